package admin

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
)

// Entry is one immutable audit trail entry: who changed what, when, and the
// state before and after.
type Entry struct {
	// ID orders entries: a later entry has a larger ID. Record assigns it.
	ID int64 `json:"id"`
	// At is when the change was recorded (UTC). Record assigns it.
	At time.Time `json:"at"`
	// Actor is the API key's name; Record fills it from the context when
	// empty (engine.Actor).
	Actor string `json:"actor"`
	// Action names the change, dotted: "rule.update", "ruleset.publish",
	// "list.items.add", "feature.delete", "limits.update", "key.create"...
	Action string `json:"action"`
	// Target names what changed: "rule:<id>", "ruleset", "list:<name>",
	// "feature:<name>"...
	Target string `json:"target"`
	// Before and After are any JSON-encodable values; nil is omitted. Read
	// back, they are json.RawMessage.
	Before any `json:"before,omitempty"`
	After  any `json:"after,omitempty"`
}

// AuditQuery filters and pages the audit trail. Zero fields do not filter.
type AuditQuery struct {
	// Actor matches exactly.
	Actor string
	// Action matches exactly or as a dotted prefix: "list" matches
	// "list.delete" and "list.items.add".
	Action string
	// Target matches exactly.
	Target string
	// From and To bound At: From <= At < To.
	From, To time.Time
	// Limit is 1 to MaxAuditPage; zero means DefaultAuditPage.
	Limit int
	// Cursor continues a previous query (its next cursor).
	Cursor string
}

// Audit page sizes.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 500
)

const prefixAudit = keyspace.Audit

// Audit is the append-only audit trail, kept in a kv.DB under "au/" and
// ordered by entry ID. It has no update or delete. It is safe for
// concurrent use.
type Audit struct {
	db  kv.DB
	now func() time.Time

	// mu serialises this process's appends, so they rarely conflict;
	// several nodes of a cluster are kept apart by the write's transaction.
	mu sync.Mutex
}

// NewAudit returns the audit trail kept in db. now is the clock; nil means
// time.Now. It does no I/O.
func NewAudit(db kv.DB, now func() time.Time) *Audit {
	if now == nil {
		now = time.Now
	}
	return &Audit{db: db, now: now}
}

func auditKey(id int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixAudit), uint64(id))
}

// storedEntry is the stored form of an Entry.
type storedEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

func (s storedEntry) entry() Entry {
	e := Entry{ID: s.ID, At: s.At, Actor: s.Actor, Action: s.Action, Target: s.Target}
	if len(s.Before) > 0 {
		e.Before = s.Before
	}
	if len(s.After) > 0 {
		e.After = s.After
	}
	return e
}

// Record appends e to the trail and returns it as stored, with its ID, time
// and actor. Action and Target are required.
func (a *Audit) Record(ctx context.Context, e Entry) (Entry, error) {
	if e.Action == "" || e.Target == "" {
		return Entry{}, fmt.Errorf("audit entry needs an action and a target: %w", engine.ErrInvalid)
	}
	if e.Actor == "" {
		e.Actor = engine.Actor(ctx)
	}
	s := storedEntry{Actor: e.Actor, Action: e.Action, Target: e.Target}
	var err error
	if s.Before, err = rawJSON(e.Before); err != nil {
		return Entry{}, fmt.Errorf("encode audit before: %w", err)
	}
	if s.After, err = rawJSON(e.After); err != nil {
		return Entry{}, fmt.Errorf("encode audit after: %w", err)
	}
	// The change is made already, so a caller that went away must not
	// lose its entry: the trail is read and written without ctx's
	// cancellation.
	ctx = context.WithoutCancel(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	// The number is taken inside the write: several nodes of a cluster
	// append to one trail, and a concurrent append makes this one
	// conflict and take the next number.
	var data []byte
	for attempt := 0; ; attempt++ {
		err = a.db.Update(ctx, func(tx kv.Tx) error {
			last, err := lastAuditID(tx)
			if err != nil {
				return err
			}
			s.ID, s.At = last+1, a.now().UTC()
			if data, err = encodeStored(s); err != nil {
				return fmt.Errorf("encode audit entry: %w", err)
			}
			return tx.Set(auditKey(s.ID), data)
		})
		if !errors.Is(err, kv.ErrConflict) || attempt >= maxAuditAttempts {
			break
		}
	}
	if err != nil {
		return Entry{}, fmt.Errorf("store audit entry: %w", err)
	}
	return s.entry(), nil
}

// maxAuditAttempts bounds the retries of an append that raced another
// node's.
const maxAuditAttempts = 20

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if r, ok := v.(json.RawMessage); ok {
		return r, nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil, err
	}
	return b, nil
}

func (a *Audit) lastID(ctx context.Context) (int64, error) {
	var last int64
	err := a.db.View(ctx, func(tx kv.Tx) (err error) {
		last, err = lastAuditID(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read audit trail: %w", err)
	}
	return last, nil
}

// lastAuditID is the newest entry's number in tx, 0 for an empty trail.
func lastAuditID(tx kv.Tx) (int64, error) {
	var last int64
	err := tx.Scan([]byte(prefixAudit), kv.ScanOptions{Reverse: true, From: auditKey(math.MaxInt64), KeysOnly: true}, func(k, _ []byte) error {
		last = int64(binary.BigEndian.Uint64(k[len(prefixAudit):]))
		return kv.Stop
	})
	return last, err
}

// Query returns the entries matching q, newest first, and a cursor for the
// next page ("" when there is none).
func (a *Audit) Query(ctx context.Context, q AuditQuery) ([]Entry, string, error) {
	if q.Limit == 0 {
		q.Limit = DefaultAuditPage
	}
	if q.Limit < 0 || q.Limit > MaxAuditPage {
		return nil, "", engine.Invalid("limit", "invalid_limit", fmt.Sprintf("limit must be between 1 and %d", MaxAuditPage))
	}
	start := int64(math.MaxInt64)
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this endpoint returned")
		}
		start = n - 1
	}
	out := []Entry{}
	next := ""
	err := a.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixAudit), kv.ScanOptions{Reverse: true, From: auditKey(start)}, func(_, b []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var s storedEntry
			if err := decodeStored(b, &s); err != nil {
				return err
			}
			if !q.matches(&s) {
				return nil
			}
			if len(out) == q.Limit {
				next = strconv.FormatInt(out[len(out)-1].ID, 10)
				return kv.Stop
			}
			out = append(out, s.entry())
			return nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("read audit trail: %w", err)
	}
	return out, next, nil
}

func (q *AuditQuery) matches(s *storedEntry) bool {
	switch {
	case q.Actor != "" && s.Actor != q.Actor,
		q.Target != "" && s.Target != q.Target,
		q.Action != "" && s.Action != q.Action && !strings.HasPrefix(s.Action, q.Action+"."),
		!q.From.IsZero() && s.At.Before(q.From),
		!q.To.IsZero() && !s.At.Before(q.To):
		return false
	}
	return true
}

// After returns up to limit entries numbered above id, oldest first, for
// readers that follow the trail (webhook events). Entries are numbered and
// written in order under one lock, so a reader that remembers the last ID
// it saw misses none.
func (a *Audit) After(ctx context.Context, id int64, limit int) ([]Entry, error) {
	var out []Entry
	err := a.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixAudit), kv.ScanOptions{From: auditKey(id + 1)}, func(_, b []byte) error {
			if len(out) >= limit {
				return kv.Stop
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var s storedEntry
			if err := decodeStored(b, &s); err != nil {
				return err
			}
			out = append(out, s.entry())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	return out, nil
}

// LastID returns the number of the newest entry, 0 when the trail is
// empty. It takes no context (package notify calls it as it is); a read
// runs under context.Background().
func (a *Audit) LastID() (int64, error) {
	return a.lastID(context.Background())
}
