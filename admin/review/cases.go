package review

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
)

// Lists are the named block lists a case closed as fraud adds its entities
// to (features.Lists).
type Lists interface {
	Get(name string) (features.List, error)
	AddItems(name string, items []features.Item) ([]features.Item, error)
}

// Case statuses.
const (
	CaseOpen   = "open"
	CaseClosed = "closed"
)

// Entity types a case may group around.
var entityTypes = []string{"card", "account", "device", "ip", "email"}

// Entity is one thing a case is about: a card fingerprint, an account id,
// a device id, an IP address or an email address.
type Entity struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Note is one entry of a case's append-only notes.
type Note struct {
	Author string    `json:"author"`
	At     time.Time `json:"at"`
	Text   string    `json:"text"`
}

// Case groups decisions and entities around one story, with notes, tags
// and links. Closed cases are the library.
type Case struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Status     string   `json:"status"`
	Assignee   string   `json:"assignee,omitempty"`
	Resolution string   `json:"resolution,omitempty"`
	Tags       []string `json:"tags"`
	Entities   []Entity `json:"entities"`
	Decisions  []string `json:"decisions"`
	// Rules and Outcomes are those of its decisions: the active rules that
	// matched, the outcomes, each once; kept for the library's filters.
	Rules     []string         `json:"rules"`
	Outcomes  []engine.Outcome `json:"outcomes"`
	Links     []string         `json:"links"`
	Notes     []Note           `json:"notes"`
	Blocked   []BlockedEntry   `json:"blocked,omitempty"`
	CreatedBy string           `json:"created_by"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	ClosedBy  string           `json:"closed_by,omitempty"`
	ClosedAt  time.Time        `json:"closed_at,omitzero"`
}

// BlockedEntry is a list entry a case added when it was closed as fraud.
type BlockedEntry struct {
	List      string    `json:"list"`
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Bounds on a case.
const (
	maxTitleLen     = 200
	maxEntities     = 100
	maxEntityLen    = features.MaxListValueLen
	maxCaseDecision = 1000
	maxNotes        = 1000
	maxNoteText     = 4096
	maxLinks        = 20
	maxLinkLen      = 512
	maxBlockLists   = 10
)

// Cases keeps cases in Config.DB. It is safe for concurrent use.
type Cases struct {
	cfg Config
	// mu serialises changes, so a read-modify-write of a case is never
	// lost to another.
	mu sync.Mutex
}

// NewCases returns the cases kept in cfg.DB. It does no I/O.
func NewCases(cfg Config) *Cases {
	cfg.defaults()
	return &Cases{cfg: cfg}
}

// newCaseID is "case_", 16 hex digits of the creation time in nanoseconds
// (so ids sort by creation), then 8 random hex digits. The random part is
// drawn again while the id holds a digit run that passes for a card number:
// ids go into label notes and searches, which refuse those.
func newCaseID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	id := ""
	for range 16 {
		_, _ = rand.Read(b[8:])
		if id = "case_" + hex.EncodeToString(b[:]); !engine.LooksLikePAN(id) {
			break
		}
	}
	return id
}

// NewCase is what creates a case.
type NewCase struct {
	Title     string
	Tags      []string
	Entities  []Entity
	Decisions []string
	Links     []string
}

// Create stores a new open case. Its decisions must exist.
func (cs *Cases) Create(ctx context.Context, in NewCase) (Case, error) {
	now := cs.cfg.Now().UTC()
	c := Case{
		ID: newCaseID(now), Title: in.Title, Status: CaseOpen, Tags: orEmpty(in.Tags), Entities: []Entity{},
		Decisions: []string{}, Rules: []string{}, Outcomes: []engine.Outcome{}, Links: orEmpty(in.Links), Notes: []Note{},
		CreatedBy: engine.Actor(ctx), CreatedAt: now, UpdatedAt: now,
	}
	if err := checkTitle(c.Title); err != nil {
		return Case{}, err
	}
	if err := checkTags("tags", c.Tags); err != nil {
		return Case{}, err
	}
	if err := checkLinks(c.Links); err != nil {
		return Case{}, err
	}
	if err := c.addEntities(in.Entities); err != nil {
		return Case{}, err
	}
	if err := cs.addDecisions(ctx, &c, in.Decisions); err != nil {
		return Case{}, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if err := cs.put(ctx, c); err != nil {
		return Case{}, err
	}
	return c, nil
}

// Get returns a case, or an error wrapping engine.ErrNotFound.
func (cs *Cases) Get(ctx context.Context, id string) (Case, error) {
	v, err := kv.Get(ctx, cs.cfg.DB, []byte(prefixCase+id))
	if errors.Is(err, kv.ErrNotFound) {
		return Case{}, fmt.Errorf("case %q: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return Case{}, err
	}
	var c Case
	if err := decodeValue(v, &c); err != nil {
		return Case{}, err
	}
	return c, nil
}

func (cs *Cases) put(ctx context.Context, c Case) error {
	v, err := encodeValue(c)
	if err != nil {
		return err
	}
	if err := cs.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		return cs.cfg.set(tx, []byte(prefixCase+c.ID), v, c.UpdatedAt)
	}); err != nil {
		return fmt.Errorf("store case: %w", err)
	}
	return nil
}

// update applies fn to the stored case and stores the result.
func (cs *Cases) update(ctx context.Context, id string, fn func(c *Case) error) (before, after Case, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	before, err = cs.Get(ctx, id)
	if err != nil {
		return Case{}, Case{}, err
	}
	after = before
	after.Tags, after.Entities, after.Decisions = slices.Clone(before.Tags), slices.Clone(before.Entities), slices.Clone(before.Decisions)
	after.Rules, after.Outcomes, after.Links, after.Notes = slices.Clone(before.Rules), slices.Clone(before.Outcomes), slices.Clone(before.Links), slices.Clone(before.Notes)
	if err := fn(&after); err != nil {
		return Case{}, Case{}, err
	}
	after.UpdatedAt = cs.cfg.Now().UTC()
	return before, after, cs.put(ctx, after)
}

// AddNote appends a note by the caller.
func (cs *Cases) AddNote(ctx context.Context, id, text string) (Case, error) {
	if text == "" {
		return Case{}, engine.Invalid("text", "required", "text is required")
	}
	if err := checkNote("text", text, maxNoteText); err != nil {
		return Case{}, err
	}
	_, c, err := cs.update(ctx, id, func(c *Case) error {
		if len(c.Notes) >= maxNotes {
			return engine.Invalid("text", "too_many", fmt.Sprintf("a case holds at most %d notes", maxNotes))
		}
		c.Notes = append(c.Notes, Note{Author: engine.Actor(ctx), At: cs.cfg.Now().UTC(), Text: text})
		return nil
	})
	return c, err
}

// AddDecisions links decisions to a case; a decision linked before is
// skipped. Every decision must exist.
func (cs *Cases) AddDecisions(ctx context.Context, id string, ids []string) (Case, error) {
	if len(ids) == 0 {
		return Case{}, engine.Invalid("decision_ids", "required", "decision_ids is required")
	}
	_, c, err := cs.update(ctx, id, func(c *Case) error { return cs.addDecisions(ctx, c, ids) })
	return c, err
}

func (cs *Cases) addDecisions(ctx context.Context, c *Case, ids []string) error {
	if len(c.Decisions)+len(ids) > maxCaseDecision {
		return engine.Invalid("decisions", "too_many", fmt.Sprintf("a case holds at most %d decisions", maxCaseDecision))
	}
	for _, id := range ids {
		if slices.Contains(c.Decisions, id) {
			continue
		}
		rec, err := cs.cfg.Decisions.Get(ctx, id)
		if errors.Is(err, engine.ErrNotFound) {
			return engine.Invalid("decisions", "unknown_decision", fmt.Sprintf("decision %q does not exist", id))
		}
		if err != nil {
			return err
		}
		c.Decisions = append(c.Decisions, rec.ID)
		if !slices.Contains(c.Outcomes, rec.Outcome) {
			c.Outcomes = append(c.Outcomes, rec.Outcome)
		}
		for i := range rec.Rules {
			r := &rec.Rules[i]
			if r.Matched && r.Mode == engine.ModeActive && r.Error == "" && !slices.Contains(c.Rules, r.ID) {
				c.Rules = append(c.Rules, r.ID)
			}
		}
	}
	return nil
}

func (c *Case) addEntities(es []Entity) error {
	if len(c.Entities)+len(es) > maxEntities {
		return engine.Invalid("entities", "too_many", fmt.Sprintf("a case holds at most %d entities", maxEntities))
	}
	for i, e := range es {
		switch {
		case !slices.Contains(entityTypes, e.Type):
			return engine.Invalid(fmt.Sprintf("entities[%d].type", i), "invalid_type", "type must be card, account, device, ip or email")
		case e.Value == "" || len(e.Value) > maxEntityLen:
			return engine.Invalid(fmt.Sprintf("entities[%d].value", i), "invalid_value", fmt.Sprintf("value must be 1 to %d bytes", maxEntityLen))
		case engine.LooksLikePAN(e.Value):
			return engine.Invalid(fmt.Sprintf("entities[%d].value", i), "card_number_refused", "cards are named by fingerprint, never by number")
		}
		if !slices.Contains(c.Entities, e) {
			c.Entities = append(c.Entities, e)
		}
	}
	return nil
}

func checkTitle(t string) error {
	switch {
	case t == "":
		return engine.Invalid("title", "required", "title is required")
	case len(t) > maxTitleLen:
		return engine.Invalid("title", "too_long", fmt.Sprintf("title is longer than %d bytes", maxTitleLen))
	case engine.LooksLikePAN(t):
		return engine.Invalid("title", "card_number_refused", "the title looks like it holds a card number; never send one")
	}
	return nil
}

func checkLinks(links []string) error {
	if len(links) > maxLinks {
		return engine.Invalid("links", "too_many", fmt.Sprintf("at most %d links", maxLinks))
	}
	for _, l := range links {
		if l == "" || len(l) > maxLinkLen || engine.LooksLikePAN(l) {
			return engine.Invalid("links", "invalid_link", fmt.Sprintf("a link is 1 to %d bytes and holds no card number", maxLinkLen))
		}
	}
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// record appends an audit entry for a change already made.
func record(ctx context.Context, a *admin.Audit, action, target string, before, after any) error {
	if _, err := a.Record(ctx, admin.Entry{Action: action, Target: target, Before: before, After: after}); err != nil {
		return fmt.Errorf("%s %s done, but not recorded in the audit trail: %w", action, target, err)
	}
	return nil
}
