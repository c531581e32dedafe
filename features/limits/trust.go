package limits

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/lists"
	"golang.org/x/sync/singleflight"

	"github.com/riskengine/risk/engine"
)

// MaxTrustHistory is how many trust and override changes are kept per
// entity, newest last in storage.
const MaxTrustHistory = 100

// Kinds of TrustEvent.
const (
	EventLabel           = "label"
	EventOverrideSet     = "override_set"
	EventOverrideDeleted = "override_deleted"
)

// TrustEvent is one change to an entity's trust or override, with its
// cause.
type TrustEvent struct {
	At time.Time `json:"at"`
	// Kind is label, override_set or override_deleted.
	Kind        string  `json:"kind"`
	Label       string  `json:"label,omitempty"`
	DecisionID  string  `json:"decision_id,omitempty"`
	TrustBefore float64 `json:"trust_before"`
	TrustAfter  float64 `json:"trust_after"`
	// Cause says in words what happened.
	Cause  string `json:"cause"`
	Author string `json:"author,omitempty"`
	Note   string `json:"note,omitempty"`
}

// trustState is the stored state of one entity (prefix lt/).
type trustState struct {
	// Trust is meaningful when Learned: a label set it. Otherwise the
	// policy's initial trust applies.
	Trust   float64      `json:"trust"`
	Learned bool         `json:"learned,omitempty"`
	History []TrustEvent `json:"history,omitempty"`
}

// trustEntry is what the payment path needs of a trust state.
type trustEntry struct {
	trust float64
	known bool
	// cause explains the trust for decisions ("trust 1.25: ..."); empty
	// when no label ever moved it.
	cause string
}

func (st *trustState) entry() trustEntry {
	e := trustEntry{trust: st.Trust, known: st.Learned}
	for i := len(st.History) - 1; i >= 0; i-- {
		if ev := &st.History[i]; ev.Kind == EventLabel {
			e.cause = fmt.Sprintf("trust %s since %s: %s", fmtTrust(st.Trust), ev.At.UTC().Format(time.RFC3339), ev.Cause)
			break
		}
	}
	return e
}

func fmtTrust(t float64) string { return strconv.FormatFloat(t, 'f', -1, 64) }

// trustCache is a sharded LRU of trust entries in front of the kv.DB. An entry
// is replaced under its shard's lock after every durable change, so a
// cached entry is never older than the stored state.
//
// A miss reads the kv.DB outside the shard's lock (a slow read holds up only
// that entity's payments), one read per entity in flight (singleflight);
// the shard's gen, bumped by every put, tells whether the read may be
// older than a change made while it ran, and then it is not cached.
//
// Most entities never get feedback: stored holds the hashes of those that
// have a state, so a cold entity without one costs no read.
type trustCache struct {
	seed     maphash.Seed
	load     func(ctx context.Context, entity string) (trustEntry, error)
	shards   [16]trustShard
	inflight singleflight.Group

	storedMu sync.RWMutex
	stored   map[uint64]struct{} // nil: unknown, always read the kv.DB
}

type trustShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, trustEntry]
	gen uint64 // puts so far
}

func (c *trustCache) init(capacity int, load func(context.Context, string) (trustEntry, error)) {
	c.seed, c.load = maphash.MakeSeed(), load
	per := max(capacity/len(c.shards), 16)
	for i := range c.shards {
		c.shards[i].lru, _ = simplelru.NewLRU[string, trustEntry](per, nil) // size > 0: cannot fail
	}
}

func (c *trustCache) shard(entity string) *trustShard {
	return &c.shards[maphash.String(c.seed, entity)%uint64(len(c.shards))]
}

func (c *trustCache) get(ctx context.Context, entity string) (trustEntry, error) {
	s := c.shard(entity)
	s.mu.Lock()
	e, ok := s.lru.Get(entity)
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	if !c.mayHave(entity) {
		return trustEntry{}, nil
	}
	v, err, _ := c.inflight.Do(entity, func() (any, error) { return c.load(ctx, entity) })
	if err != nil {
		return trustEntry{}, err
	}
	e = v.(trustEntry)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		// A put ran meanwhile: its entry (if still cached) is newer than
		// what was read, which is not cached.
		if cur, ok := s.lru.Get(entity); ok {
			return cur, nil
		}
		return e, nil
	}
	s.lru.Add(entity, e)
	return e, nil
}

// purge forgets every cached entry: another node may have changed any.
func (c *trustCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.lru.Purge()
		s.gen++
		s.mu.Unlock()
	}
}

// put caches the entry of an entity whose state was just stored.
func (c *trustCache) put(entity string, e trustEntry) {
	c.storedMu.Lock()
	if c.stored != nil {
		c.stored[maphash.String(c.seed, entity)] = struct{}{}
	}
	c.storedMu.Unlock()
	c.inflight.Forget(entity) // a get from now on reads the new state
	s := c.shard(entity)
	s.mu.Lock()
	s.lru.Add(entity, e)
	s.gen++
	s.mu.Unlock()
}

// mayHave reports whether entity may have a stored state.
func (c *trustCache) mayHave(entity string) bool {
	h := maphash.String(c.seed, entity)
	c.storedMu.RLock()
	defer c.storedMu.RUnlock()
	if c.stored == nil {
		return true
	}
	_, ok := c.stored[h]
	return ok
}

// loadIndex reads the keys of every stored trust state.
func (c *trustCache) loadIndex(ctx context.Context, db kv.DB) error {
	defer c.purge()
	set := map[uint64]struct{}{}
	err := db.View(ctx, func(txn kv.Tx) error {
		return txn.Scan([]byte(prefixTrust), kv.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			set[maphash.Bytes(c.seed, k[len(prefixTrust):])] = struct{}{}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("index trust states: %w", err)
	}
	c.storedMu.Lock()
	c.stored = set
	c.storedMu.Unlock()
	return nil
}

func (l *Limiter) loadTrust(ctx context.Context, entity string) (trustEntry, error) {
	st, err := l.readState(ctx, entity)
	if err != nil {
		return trustEntry{}, err
	}
	return st.entry(), nil
}

// readState reads an entity's stored state; a zero state when none.
func (l *Limiter) readState(ctx context.Context, entity string) (trustState, error) {
	var st trustState
	v, err := kv.Get(ctx, l.db, []byte(prefixTrust+entity))
	if err == nil {
		if st, err = decodeTrustState(v); err != nil {
			err = fmt.Errorf("trust state of %s: %w", entity, err)
		}
	}
	if errors.Is(err, kv.ErrNotFound) {
		return trustState{}, nil
	}
	if errors.Is(err, engine.ErrCorrupt) {
		if l.src.Corrupt != nil {
			l.src.Corrupt()
		}
		return trustState{}, err
	}
	if err != nil {
		return trustState{}, fmt.Errorf("read trust state: %w", err)
	}
	return st, nil
}

// defaultMarkerTTL keeps a label's applied marker when no retention says
// how long decisions are kept.
const defaultMarkerTTL = 400 * 24 * time.Hour

// writeState stores st in txn.
func writeState(txn kv.Tx, entity string, st *trustState) error {
	if n := len(st.History); n > MaxTrustHistory {
		st.History = append([]TrustEvent(nil), st.History[n-MaxTrustHistory:]...)
	}
	data, err := encodeTrustState(st)
	if err != nil {
		return err
	}
	return txn.Set([]byte(prefixTrust+entity), data)
}

// ApplyLabel implements engine.TrustUpdater: it applies the policy's effect
// of label lb (already stored on rec) to the paying entity, once per
// decision and label. Trust moves by the effect's step within the policy's
// trust bounds, or drops to the floor; the card and device may be added to
// block lists. Every change is recorded in the entity's history and the
// audit trail.
func (l *Limiter) ApplyLabel(ctx context.Context, rec *engine.Record, lb engine.Label) (engine.LabelEffect, error) {
	pol := l.policy.Load()
	eff, ok := pol.Effects[lb.Label]
	if !ok {
		return engine.LabelEffect{}, nil
	}
	entity, _ := EntityOf(l.kind, &rec.Payment) // "" when the payment has none
	lockKey := entity
	if lockKey == "" {
		lockKey = rec.ID
	}
	mu := l.lock(lockKey)
	mu.Lock()
	defer mu.Unlock()

	res := engine.LabelEffect{Entity: entity}
	var st trustState
	if entity != "" {
		var err error
		if st, err = l.readState(ctx, entity); err != nil {
			return engine.LabelEffect{}, err
		}
		res.TrustBefore = pol.Trust.Initial
		if st.Learned {
			res.TrustBefore = st.Trust
		}
		res.TrustBefore = pol.clampTrust(res.TrustBefore)
		res.TrustAfter = res.TrustBefore
	}
	marker := []byte(prefixApplied + rec.ID + "\x00" + lb.Label)
	done, err := l.isApplied(ctx, marker)
	if err != nil || done {
		return res, err
	}
	res.Applied = true
	now := l.opts.Now().UTC()
	if res.Blocked, err = l.block(rec, lb, eff, pol, now); err != nil {
		return engine.LabelEffect{}, err
	}
	if entity != "" {
		switch {
		case eff.TrustToFloor:
			res.TrustAfter = pol.Trust.Floor
		case eff.TrustStep != 0:
			res.TrustAfter = pol.clampTrust(math.Round((res.TrustBefore+eff.TrustStep)*1e6) / 1e6)
		}
		st.Trust, st.Learned = res.TrustAfter, true
		st.History = append(st.History, TrustEvent{
			At: now, Kind: EventLabel, Label: lb.Label, DecisionID: rec.ID,
			TrustBefore: res.TrustBefore, TrustAfter: res.TrustAfter,
			Cause: labelCause(lb.Label, rec.ID, res.TrustBefore, res.TrustAfter, pol), Author: lb.Source, Note: lb.Note,
		})
	}
	ttl := l.src.MarkerTTL
	if ttl <= 0 {
		ttl = defaultMarkerTTL
	}
	err = l.db.Update(ctx, func(txn kv.Tx) error {
		if entity != "" {
			if err := writeState(txn, entity, &st); err != nil {
				return err
			}
		}
		return txn.SetTTL(marker, nil, ttl)
	})
	if err != nil {
		return engine.LabelEffect{}, fmt.Errorf("store trust of %s: %w", entity, err)
	}
	target := entity
	if entity != "" {
		l.trust.put(entity, st.entry())
	} else {
		target = "decision:" + rec.ID
	}
	type trustAudit struct {
		Label      string               `json:"label"`
		DecisionID string               `json:"decision_id"`
		Trust      float64              `json:"trust"`
		Blocked    []engine.BlockedItem `json:"blocked,omitempty"`
	}
	err = l.audit(ctx, "limits.trust.label", target,
		trustAudit{Label: lb.Label, DecisionID: rec.ID, Trust: res.TrustBefore},
		trustAudit{Label: lb.Label, DecisionID: rec.ID, Trust: res.TrustAfter, Blocked: res.Blocked})
	return res, err
}

func labelCause(label, decisionID string, before, after float64, pol *compiledPolicy) string {
	var what string
	switch {
	case after > before:
		what = fmt.Sprintf("raised trust from %s to %s", fmtTrust(before), fmtTrust(after))
	case after < before:
		what = fmt.Sprintf("lowered trust from %s to %s", fmtTrust(before), fmtTrust(after))
	default:
		what = "left trust at " + fmtTrust(after)
	}
	switch after {
	case pol.Trust.Ceiling:
		what += " (the ceiling)"
	case pol.Trust.Floor:
		what += " (the floor)"
	}
	return fmt.Sprintf("%s on decision %s %s", label, decisionID, what)
}

func (l *Limiter) isApplied(ctx context.Context, marker []byte) (bool, error) {
	_, err := kv.Get(ctx, l.db, marker)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read label marker: %w", err)
	}
	return true, nil
}

// block adds the payment's card and device to the block lists as the
// effect asks. An entry already there that lasts at least as long is left
// alone, so a repeated block never shortens one.
func (l *Limiter) block(rec *engine.Record, lb engine.Label, eff Effect, pol *compiledPolicy, now time.Time) ([]engine.BlockedItem, error) {
	bl := l.opts.Lists
	if bl == nil || (!eff.BlockCard && !eff.BlockDevice) {
		return nil, nil
	}
	var expires time.Time
	if d := pol.blockFor[lb.Label]; d > 0 {
		expires = now.Add(d)
	}
	var out []engine.BlockedItem
	add := func(list, value string) error {
		if value == "" {
			return nil
		}
		if cur, ok := bl.Expiry(list, value); ok && (cur.IsZero() || (!expires.IsZero() && !cur.Before(expires))) {
			return nil
		}
		if _, err := bl.Get(list); errors.Is(err, engine.ErrNotFound) {
			if _, err := bl.Put(lists.List{Name: list, Kind: lists.KindString, Author: "limits", Description: "filled by fraud feedback"}); err != nil {
				return fmt.Errorf("create list %s: %w", list, err)
			}
		}
		item := lists.Item{Value: value, Reason: lb.Label + " on decision " + rec.ID, Author: lb.Source, ExpiresAt: expires}
		if _, err := bl.AddItems(list, []lists.Item{item}); err != nil {
			return fmt.Errorf("block %s: %w", list, err)
		}
		out = append(out, engine.BlockedItem{List: list, Value: value, ExpiresAt: expires})
		return nil
	}
	if eff.BlockCard {
		if err := add(ListBlockedCards, rec.Payment.Card.Fingerprint); err != nil {
			return nil, err
		}
	}
	if eff.BlockDevice {
		if err := add(ListBlockedDevices, rec.Payment.Device.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
