package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// maxWrites bounds the writes of one transaction of the reader, well
// below what a store accepts in one (Badger's size limit, kv.ErrTooBig).
const maxWrites = 4000

var errChunk = errors.New("chunk full")

// Event is one webhook event as delivered: the body is exactly this JSON.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// task is one pending delivery of an event to a hook.
type task struct {
	EventID string `json:"event_id"`
	HookID  string `json:"hook_id"`
	Type    string `json:"type"`
	// Attempts made so far.
	Attempts int `json:"attempts"`
	// Since is when retrying started: the event's creation, or a manual
	// resend. Retries stop MaxRetryAge after it.
	Since time.Time `json:"since"`
}

// ReasonData is one reason of a decision event.
type ReasonData struct {
	Rule    string `json:"rule,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// DecisionData is the data of decision.* events.
type DecisionData struct {
	DecisionID     string       `json:"decision_id"`
	TransactionID  string       `json:"transaction_id"`
	Decision       string       `json:"decision"`
	Score          int          `json:"score"`
	Reasons        []ReasonData `json:"reasons"`
	ConsoleURL     string       `json:"console_url,omitempty"`
	RulesetVersion int64        `json:"ruleset_version"`
	Degraded       bool         `json:"degraded"`
	DegradedCause  string       `json:"degraded_cause,omitempty"`
	Amount         int64        `json:"amount"`
	Currency       string       `json:"currency"`
	MerchantID     string       `json:"merchant_id,omitempty"`
	EvaluatedAt    time.Time    `json:"evaluated_at"`
}

// ConsoleURL is the console's deep link to a decision, "" without a
// public URL.
func (n *Notifier) ConsoleURL(decisionID string) string {
	if n.cfg.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(n.cfg.PublicURL, "/") + consoleDecisionPath + url.PathEscape(decisionID)
}

func (n *Notifier) decisionData(rec *engine.Record) DecisionData {
	d := DecisionData{
		DecisionID: rec.ID, TransactionID: rec.TransactionID, Decision: string(rec.Outcome), Score: rec.Score,
		Reasons: make([]ReasonData, len(rec.Reasons)), ConsoleURL: n.ConsoleURL(rec.ID), RulesetVersion: rec.RulesetVersion,
		Degraded: rec.Degraded, DegradedCause: string(rec.DegradedCause), Amount: rec.Payment.Amount, Currency: rec.Payment.Currency,
		MerchantID: rec.Payment.Merchant.ID, EvaluatedAt: rec.EvaluatedAt.UTC(),
	}
	for i, r := range rec.Reasons {
		d.Reasons[i] = ReasonData{Rule: r.Rule, Code: r.Code, Message: r.Message}
	}
	return d
}

// decisionEvents are the event types a decision raises.
func decisionEvents(rec *engine.Record) []string {
	var out []string
	switch rec.Outcome {
	case engine.Deny:
		out = append(out, EventDenied)
	case engine.Challenge:
		out = append(out, EventChallenged)
	}
	if rec.Degraded {
		out = append(out, EventDegraded)
	}
	return out
}

// eventID of a decision's event of type t: derived, so reading the log
// again after a crash makes the same event, and receivers dedupe it.
func eventID(decisionID, t string) string {
	return "evt_" + strings.TrimPrefix(decisionID, "dec_") + "_" + t[strings.LastIndexByte(t, '.')+1:]
}

// put stores ev and a due delivery for every hook subscribed to its type,
// in tx, and returns the number of writes (0 when no hook subscribes).
func (n *Notifier) put(tx kv.Tx, hooks []Hook, ev Event, now time.Time) (int, error) {
	writes := 0
	for i := range hooks {
		h := &hooks[i]
		if !h.subscribes(ev.Type) {
			continue
		}
		if writes == 0 {
			body, err := json.Marshal(ev)
			if err != nil {
				return 0, fmt.Errorf("encode event: %w", err)
			}
			if err := tx.SetTTL([]byte(prefixEvent+ev.ID), body, n.cfg.Retention); err != nil {
				return 0, err
			}
			writes++
		}
		if err := n.putTask(tx, task{EventID: ev.ID, HookID: h.ID, Type: ev.Type, Since: ev.CreatedAt}, now); err != nil {
			return 0, err
		}
		writes++
	}
	return writes, nil
}

func (n *Notifier) putTask(tx kv.Tx, t task, due time.Time) error {
	v, err := encodeValue(t)
	if err != nil {
		return err
	}
	return tx.Set(dueKey(due.UnixNano(), t.HookID, t.EventID), v)
}

func newEvent(id, typ string, at time.Time, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return Event{ID: id, Type: typ, CreatedAt: at.UTC(), Data: raw}, nil
}

// Publish puts an event of type typ with data in the outbox, durably, for
// every webhook subscribed to it, and returns its id. id "" makes a new
// one; a fixed id lets a caller that may publish twice be deduped by
// receivers.
func (n *Notifier) Publish(ctx context.Context, typ, id string, data any) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	now := n.now()
	if id == "" {
		id = engine.NewID("evt_", now)
	}
	ev, err := newEvent(id, typ, now, data)
	if err != nil {
		return "", err
	}
	hooks := n.Hooks()
	err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		_, err := n.put(tx, hooks, ev, now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store %s event: %w", typ, err)
	}
	n.nudge()
	return id, nil
}

// PublishTxn puts an event of type typ with data and id in the outbox
// within tx, for every webhook subscribed to it, so the event is stored
// exactly when what tx stores is (a review item). The dispatcher sends it
// on its next pass. tx must be a transaction of Config.DB.
func (n *Notifier) PublishTxn(tx kv.Tx, typ, id string, data any) error {
	now := n.now()
	ev, err := newEvent(id, typ, now, data)
	if err != nil {
		return err
	}
	if _, err := n.put(tx, n.Hooks(), ev, now); err != nil {
		return fmt.Errorf("store %s event: %w", typ, err)
	}
	return nil
}

// Sync reads the decision log and the audit trail from their cursors to
// their ends, puts the events they raise in the outbox and moves the
// cursors, in one transaction per chunk, and returns how many events it
// stored. A pass cut short by a crash is repeated with the same event ids.
func (n *Notifier) Sync(ctx context.Context) (int, error) {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	total := 0
	for {
		stored, more, err := n.syncDecisions(ctx)
		total += stored
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	for {
		stored, more, err := n.syncAudit(ctx)
		total += stored
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	if total > 0 {
		n.nudge()
	}
	return total, nil
}

// syncDecisions reads one chunk of the decision log.
func (n *Notifier) syncDecisions(ctx context.Context) (stored int, more bool, err error) {
	from, err := n.readU64(ctx, keyCursor)
	if err != nil {
		return 0, false, err
	}
	hooks, now := n.Hooks(), n.now()
	var (
		recs   []*engine.Record
		events []Event
		next   = from
		writes int
	)
	err = n.cfg.Decisions.ScanRecords(ctx, from, func(rec *engine.Record) error {
		if rec.Seq < from {
			return nil
		}
		next = rec.Seq + 1
		recs = append(recs, rec)
		for _, t := range decisionEvents(rec) {
			if !anySubscribes(hooks, t) {
				continue
			}
			ev, err := newEvent(eventID(rec.ID, t), t, rec.EvaluatedAt, n.decisionData(rec))
			if err != nil {
				return err
			}
			events = append(events, ev)
			writes += 1 + len(hooks)
		}
		if len(recs) == chunk || writes >= maxWrites {
			return errChunk
		}
		return nil
	})
	full := errors.Is(err, errChunk)
	if err != nil && !full {
		return 0, false, fmt.Errorf("read decision log: %w", err)
	}
	if len(recs) == 0 {
		return 0, false, nil
	}
	err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		cur, err := getU64(tx, keyCursor)
		if err != nil {
			return err
		}
		if cur != from {
			return fmt.Errorf("webhook cursor moved from %d to %d during a pass", from, cur)
		}
		for _, ev := range events {
			if _, err := n.put(tx, hooks, ev, now); err != nil {
				return err
			}
		}
		return tx.Set([]byte(keyCursor), u64(next))
	})
	if err != nil {
		return 0, false, fmt.Errorf("store decision events: %w", err)
	}
	if n.cfg.OnRecord != nil {
		for _, rec := range recs {
			n.cfg.OnRecord(rec)
		}
	}
	return len(events), full, nil
}

// auditEvent maps an audit action to the event type it raises, "" for
// none.
func auditEvent(action string) string {
	switch {
	case action == "ruleset.publish", action == "ruleset.canary.promote", action == "rule.guard.shadow":
		return EventPublished
	case action == "ruleset.rollback", action == "ruleset.canary.abort":
		return EventRolledBack
	case strings.HasPrefix(action, "list."):
		return EventListChanged
	}
	return ""
}

// AuditData is the data of events derived from the audit trail: what
// changed, who changed it, and for rule sets the version after.
type AuditData struct {
	AuditID int64     `json:"audit_id"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	After   any       `json:"after,omitempty"`
}

// syncAudit reads one chunk of the audit trail.
func (n *Notifier) syncAudit(ctx context.Context) (stored int, more bool, err error) {
	last, err := n.readU64(ctx, keyAuditCursor)
	if err != nil {
		return 0, false, err
	}
	entries, err := n.cfg.Audit.After(ctx, int64(last), chunk)
	if err != nil || len(entries) == 0 {
		return 0, false, err
	}
	hooks, now := n.Hooks(), n.now()
	var events []Event
	for _, e := range entries {
		t := auditEvent(e.Action)
		if t == "" || !anySubscribes(hooks, t) {
			continue
		}
		d := AuditData{AuditID: e.ID, Action: e.Action, Target: e.Target, Actor: e.Actor, At: e.At}
		if t != EventListChanged {
			d.After = e.After // a version and its diff summary; list items stay out
		}
		ev, err := newEvent("evt_audit_"+strconv.FormatInt(e.ID, 10), t, e.At, d)
		if err != nil {
			return 0, false, err
		}
		events = append(events, ev)
	}
	next := uint64(entries[len(entries)-1].ID)
	err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		cur, err := getU64(tx, keyAuditCursor)
		if err != nil {
			return err
		}
		if cur != last {
			return fmt.Errorf("webhook audit cursor moved from %d to %d during a pass", last, cur)
		}
		for _, ev := range events {
			if _, err := n.put(tx, hooks, ev, now); err != nil {
				return err
			}
		}
		return tx.Set([]byte(keyAuditCursor), u64(next))
	})
	if err != nil {
		return 0, false, fmt.Errorf("store audit events: %w", err)
	}
	return len(events), len(entries) == chunk, nil
}

func anySubscribes(hooks []Hook, t string) bool {
	for i := range hooks {
		if hooks[i].subscribes(t) {
			return true
		}
	}
	return false
}

func (n *Notifier) readU64(ctx context.Context, key string) (uint64, error) {
	var v uint64
	err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
		var err error
		v, err = getU64(tx, key)
		return err
	})
	return v, err
}

func getU64(tx kv.Tx, key string) (uint64, error) {
	b, err := tx.Get([]byte(key))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%s of %d bytes", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
