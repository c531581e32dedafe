package features

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/limits"
)

// entityPaths are the payment fields of a limit entity kind; the daily
// spend feature is keyed by them.
func entityPaths(kind string) (Paths, bool) {
	switch kind {
	case limits.EntityAccount:
		return Paths{"account.id"}, true
	case limits.EntityCard:
		return Paths{"card.fingerprint"}, true
	case limits.EntityAccountMerchant:
		return Paths{"account.id", "merchant.id"}, true
	}
	return nil, false
}

// spentWindow is the rolling window of daily limits.
const spentWindow = 24 * time.Hour

const prefixHidden = keyspace.Hidden

// spentFeature is the hidden feature behind daily limits: per limit entity,
// the sum over 24 hours of the payments not denied, in the base currency
// each was decided in (from the decision's own limits, so replaying the log
// needs no policy). It lives in the feature set like any feature, so it is
// flushed, replayed and backfilled with them, but rules cannot name it and
// Definitions does not list it. Its name starts with '_' so no analyst
// feature can take it.
func spentFeature(kind string) *feature {
	paths, _ := entityPaths(kind)
	f := &feature{
		def: Definition{
			Name: "_limits_spent_" + kind, Entity: paths, Aggregate: Sum, Window: "24h",
			Where: `decision != "deny"`,
		},
		window: spentWindow,
		bucket: BucketSize(spentWindow),
		spec:   entitySpec(paths),
		where:  notDenied{},
		hidden: true,
	}
	idx := newSpendIndex(f.window + 2*f.bucket)
	f.spend = idx
	f.amount = func(rec *engine.Record) (float64, bool) {
		v, ok := spentAmount(rec)
		if ok {
			var buf [128]byte
			if key, ok := f.entityKey(&rec.Payment, buf[:0]); ok {
				idx.mark(key, rec.Payment.OccurredAt.Unix())
			}
		}
		return v, ok
	}
	return f
}

// spendIndex knows which entities spent recently, so the limits of an
// entity that did not (most first payments of a day) cost no Badger read
// of an empty window. It maps a hash of the window key to the newest event
// time; an entity absent, or last seen longer ago than keep, has no spend.
// It errs only towards reading: a hash collision or a seeded entry just
// costs a lookup. It is safe for concurrent use.
type spendIndex struct {
	seed maphash.Seed
	keep int64 // seconds

	mu      sync.RWMutex
	last    map[uint64]int64
	newest  int64
	sweepAt int
}

func newSpendIndex(keep time.Duration) *spendIndex {
	return &spendIndex{seed: maphash.MakeSeed(), keep: int64(keep / time.Second), last: map[uint64]int64{}, sweepAt: 1 << 12}
}

// mark records an event of the entity with window key key at unix time at.
func (x *spendIndex) mark(key []byte, at int64) {
	h := maphash.Bytes(x.seed, key)
	x.mu.Lock()
	defer x.mu.Unlock()
	if at > x.last[h] {
		x.last[h] = at
	}
	x.newest = max(x.newest, at)
	if len(x.last) >= x.sweepAt {
		for k, t := range x.last {
			if t < x.newest-x.keep {
				delete(x.last, k)
			}
		}
		x.sweepAt = max(2*len(x.last), 1<<12)
	}
}

// mayHave reports whether the window of key may hold events that a read at
// unix time at can see.
func (x *spendIndex) mayHave(key []byte, at int64) bool {
	h := maphash.Bytes(x.seed, key)
	x.mu.RLock()
	t, ok := x.last[h]
	x.mu.RUnlock()
	return ok && t >= at-x.keep
}

// seedFrom marks, at now, every entity of the spend feature's spec that has
// stored state: entities flushed by an earlier run, which this index never
// saw being built. Entities without spend among them just cost a read.
func (x *spendIndex) seedFrom(db *badger.DB, f *feature, now int64) error {
	prefix := append([]byte(prefixEntity), f.spec...)
	prefix = append(prefix, 0)
	return db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		key := []byte(f.def.Name)
		for it.Rewind(); it.Valid(); it.Next() {
			key = append(key[:len(f.def.Name)], it.Item().Key()[len(prefix)-1:]...)
			x.mark(key, now)
		}
		return nil
	})
}

// notDenied admits every decided payment but denied ones: a denied payment
// spends nothing, a challenged one may.
type notDenied struct{}

// Match implements Filter.
func (notDenied) Match(rec *engine.Record) (bool, error) { return rec.Outcome != engine.Deny, nil }

// spentAmount is the payment amount in the base currency of the limits it
// was decided with; false when it was decided without limits.
func spentAmount(rec *engine.Record) (float64, bool) {
	l := &rec.Limits
	if l.Entity == "" || !(l.Rate > 0) || l.BaseCurrency == "" {
		return 0, false
	}
	return limits.ConvertMinor(float64(rec.Payment.Amount), rec.Payment.Currency, l.BaseCurrency, 1/l.Rate), true
}

// registerSpent adds the hidden spend feature for opts.LimitsEntity to the
// initial feature set. It runs in New, before Open replays the log.
func (s *Store) registerSpent() {
	if !limits.ValidEntity(s.opts.LimitsEntity) {
		return
	}
	f := spentFeature(s.opts.LimitsEntity)
	cur := s.defs.Load()
	s.defs.Store(newFeatureSet(slices.Concat(cur.list, []*feature{f})))
}

// spent returns the hidden spend feature, or nil when the store keeps none.
func (s *Store) spent() *feature {
	for _, f := range s.defs.Load().list {
		if f.hidden && f.spend != nil {
			return f
		}
	}
	return nil
}

// withHidden returns list plus the hidden features of the live set, so
// replacing the analysts' definitions keeps them.
func (s *Store) withHidden(list []*feature) []*feature {
	for _, f := range s.defs.Load().list {
		if f.hidden {
			list = append(slices.Clip(list), f)
		}
	}
	return list
}

// newHidden marks, at Open, every hidden feature never seen in this data
// directory as pending, so it is built from the stored history (a
// backfill) rather than from the replayed tail only.
func (s *Store) newHidden(pending map[string]bool) error {
	for _, f := range s.defs.Load().list {
		if !f.hidden {
			continue
		}
		key := []byte(prefixHidden + f.def.Name)
		err := s.db.Update(func(txn *badger.Txn) error {
			_, err := txn.Get(key)
			if errors.Is(err, badger.ErrKeyNotFound) {
				pending[f.def.Name] = true
				return txn.Set(key, nil)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("mark hidden feature %s: %w", f.def.Name, err)
		}
	}
	return nil
}

// LimiterSources are the store's sources for a limits.Limiter: its kv.DB,
// its daily spend, its decision log. The store must keep the daily spend
// (Options.LimitsEntity).
func (s *Store) LimiterSources() (limits.Sources, error) {
	f := s.spent()
	if f == nil {
		return limits.Sources{}, errors.New("limits: the feature store keeps no daily spend; set Options.LimitsEntity")
	}
	return limits.Sources{
		DB: s.KV(), Spend: s, Decisions: s, Kind: s.opts.LimitsEntity,
		MarkerTTL: s.opts.Retention + 30*24*time.Hour,
		Corrupt:   func() { s.ws.corrupt.Add(1) },
		Seed:      func(now time.Time) error { return f.spend.seedFrom(s.db, f, now.Unix()) },
	}, nil
}

var (
	_ limits.SpendSource    = (*Store)(nil)
	_ limits.DecisionSearch = (*Store)(nil)
)

// DailySpent implements limits.SpendSource on the store's hidden spend feature.
func (s *Store) DailySpent(ctx context.Context, p *engine.Payment) (float64, bool, error) {
	f := s.spent()
	if f == nil {
		return 0, true, nil
	}
	var buf [128]byte
	key, ok := f.entityKey(p, buf[:0])
	if !ok || !f.spend.mayHave(key, p.OccurredAt.Unix()) {
		return 0, s.ready(f), nil
	}
	var spent float64
	var ebuf [128]byte
	ekey, _ := entityKey(f.spec, f.def.Entity, p, ebuf[:0]) // present: key was
	err := s.ws.with(ekey, func(e *entity) bool {
		if w := e.find(f); w != nil {
			spent = w.value(f, p.OccurredAt)
		}
		return false
	})
	return spent, s.ready(f), err
}
