package features

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
)

// featureSet is an immutable set of compiled definitions, swapped whole.
type featureSet struct {
	list   []*feature
	byName map[string]*feature
	// groups holds the features by entity spec, in order of first use.
	groups []*group
	// visible is how many features rules see (not hidden).
	visible int
}

// group is the features of one set kept per one entity spec.
type group struct {
	spec  string
	paths Paths
	feats []*feature
	// out is each feature's index among the visible features of the set
	// (the order Features returns them in), or -1 for a hidden one.
	out []int
}

func newFeatureSet(list []*feature) *featureSet {
	fs := &featureSet{list: list, byName: make(map[string]*feature, len(list))}
	bySpec := map[string]*group{}
	for _, f := range list {
		fs.byName[f.def.Name] = f
		g := bySpec[f.spec]
		if g == nil {
			g = &group{spec: f.spec, paths: f.def.Entity}
			bySpec[f.spec] = g
			fs.groups = append(fs.groups, g)
		}
		out := -1
		if !f.hidden {
			out = fs.visible
			fs.visible++
		}
		g.feats = append(g.feats, f)
		g.out = append(g.out, out)
	}
	return fs
}

// byKey returns the feature a feature key belongs to (the name before the
// first NUL), or nil.
func (fs *featureSet) byKey(key string) *feature {
	name, _, _ := strings.Cut(key, "\x00")
	return fs.byName[name]
}

// Features implements engine.FeatureSource. A feature whose entity is
// absent from p reads as its empty value (0, or -1 for first_seen and
// last_seen). Values come in definition order. When ctx ends, the features
// not yet read keep their empty value, marked not ready, and the error says
// so. An entity whose state cannot be read (a Badger error, or a state that
// does not decode: engine.ErrCorrupt) leaves its features empty and not
// ready, the others are still read, and the error names it.
func (s *Store) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	fs := s.defs.Load()
	base := len(dst)
	for _, f := range fs.list {
		if !f.hidden {
			dst = append(dst, engine.FeatureValue{Name: f.def.Name, Value: emptyValue(f), Ready: s.ready(f)})
		}
	}
	vals := dst[base:]
	var keyBuf [128]byte
	var firstErr error
	for gi, g := range fs.groups {
		if err := ctx.Err(); err != nil {
			// Not read: the empty value stands in, marked not ready.
			for _, g := range fs.groups[gi:] {
				for _, i := range g.out {
					if i >= 0 {
						vals[i].Ready = false
					}
				}
			}
			return dst, errors.Join(firstErr, fmt.Errorf("read features: %w", err))
		}
		key, ok := entityKey(g.spec, g.paths, p, keyBuf[:0])
		if !ok {
			continue
		}
		err := s.ws.with(key, func(e *entity) bool {
			for i, f := range g.feats {
				if g.out[i] < 0 {
					continue
				}
				if w := e.find(f); w != nil {
					vals[g.out[i]].Value = w.value(f, p.OccurredAt)
				}
			}
			return false
		})
		if err != nil {
			// The other entities are still read: a corrupt card state
			// leaves the device's features to the rules.
			for _, i := range g.out {
				if i >= 0 {
					vals[i].Ready = false
				}
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("read features of %s: %w", g.spec, err)
			}
		}
	}
	return dst, firstErr
}

func emptyValue(f *feature) float64 {
	if f.def.Aggregate == FirstSeen || f.def.Aggregate == LastSeen {
		return -1
	}
	return 0
}

// apply records one decided payment into every feature of fs it matches.
func (s *Store) apply(rec *engine.Record, fs *featureSet) {
	for _, g := range fs.groups {
		s.applyGroup(rec, g.spec, g.paths, g.feats, applyNew)
	}
}

// replayApply is apply for the start-up replay of the decision log: a window
// that already holds rec (its stored seq is at or past rec.Seq, because it
// was written after rec was applied) is left alone.
func (s *Store) replayApply(rec *engine.Record, fs *featureSet) {
	for _, g := range fs.groups {
		s.applyGroup(rec, g.spec, g.paths, g.feats, applyReplay)
	}
}

// applyOne records rec into f alone (backfills, labels), as mode says.
func (s *Store) applyOne(rec *engine.Record, f *feature, mode applyMode) {
	one := [1]*feature{f}
	s.applyGroup(rec, f.spec, f.def.Entity, one[:], mode)
}

// applyMode says how applyGroup records a payment.
type applyMode int

const (
	// applyNew records a decision just committed, or a backfilled one.
	applyNew applyMode = iota
	// applyReplay is the start-up replay: a window whose seq shows it
	// already holds the decision is not changed.
	applyReplay
	// applyLabelled is a label's late effect: it is not in the decision
	// log, so the changed entity is written at the next tick.
	applyLabelled
)

// event is what one decided payment adds to one feature's window.
type event struct {
	f        *feature
	v        float64
	h        uint64
	distinct bool
}

// applyGroup records rec into feats, which are all kept per spec: one cache
// lookup for the entity, then each feature's window, as mode says.
func (s *Store) applyGroup(rec *engine.Record, spec string, paths Paths, feats []*feature, mode applyMode) {
	replay := mode == applyReplay
	var evBuf [16]event
	evs := evBuf[:0]
	for _, f := range feats {
		if ev, ok := eventOf(rec, f); ok {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		return
	}
	var keyBuf [128]byte
	key, ok := entityKey(spec, paths, &rec.Payment, keyBuf[:0])
	if !ok {
		return
	}
	at := rec.Payment.OccurredAt
	err := s.ws.with(key, func(e *entity) bool {
		changed := false
		for _, ev := range evs {
			w := e.get(ev.f)
			if replay && w.seq >= rec.Seq {
				continue
			}
			w.add(ev.f, at, ev.v, ev.h, ev.distinct)
			w.seq = max(w.seq, rec.Seq)
			changed = true
		}
		return changed
	})
	if err != nil {
		s.opts.Log.Error("update features", "entity", spec, "err", err)
		return
	}
	if mode == applyLabelled {
		s.ws.markUrgent(key)
	}
}

// eventOf is what rec adds to f; ok is false when f does not count rec (its
// filter refuses it, or the aggregated field is absent or not a number).
// Store and Memory both count through it.
func eventOf(rec *engine.Record, f *feature) (ev event, ok bool) {
	if f.where != nil {
		if ok, err := f.where.Match(rec); err != nil || !ok {
			return ev, false
		}
	}
	ev = event{f: f, distinct: f.def.Aggregate == Distinct}
	switch {
	case f.amount != nil:
		if ev.v, ok = f.amount(rec); !ok {
			return ev, false
		}
	case f.def.Field != "":
		raw, ok := rec.Payment.Field(f.def.Field)
		if !ok {
			return ev, false
		}
		if ev.distinct {
			ev.h = xxhash.Sum64(appendValue(nil, raw))
		} else if ev.v, ok = number(raw); !ok {
			return ev, false
		}
	}
	return ev, true
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Definitions returns the live feature definitions.
func (s *Store) Definitions() []Definition {
	fs := s.defs.Load()
	out := make([]Definition, 0, len(fs.list))
	for _, f := range fs.list {
		if !f.hidden {
			out = append(out, f.def)
		}
	}
	return out
}

// SetDefinitions validates defs, stores them and makes them live for every
// decision committed from now on. A feature not defined before is built
// from the stored decision history in the background (see Backfill); until
// that finishes its value is marked not ready.
//
// The change is one Badger transaction: the definitions, the new state
// epoch of each new or changed feature and its backfill marker, so a crash
// leaves either the old definitions with their windows or the new ones
// with their backfill pending, never a mix.
func (s *Store) SetDefinitions(ctx context.Context, defs []Definition) error {
	list, err := compileAll(defs, s.opts.CompileFilter)
	if err != nil {
		return err
	}
	data, err := json.Marshal(defs)
	if err != nil {
		return fmt.Errorf("encode feature definitions: %w", err)
	}
	s.defsMu.Lock()
	defer s.defsMu.Unlock()
	prev := s.defs.Load()
	var fresh []*feature
	for _, f := range list {
		if old, ok := prev.byName[f.def.Name]; ok && sameDefinition(old.def, f.def) {
			f.epoch = old.epoch
			continue
		}
		// New or changed: its state starts empty under a new epoch and is
		// rebuilt from history, whatever an earlier definition of the name
		// left.
		n, err := s.epoch(f.def.Name)
		if err != nil {
			return err
		}
		f.epoch = n + 1
		fresh = append(fresh, f)
	}
	next := newFeatureSet(s.withHidden(list))
	// seqMu is held across the write so that no decision gets a number
	// between upTo and the swap: the backfill replays up to upTo, the live
	// path applies the rest. A definition change is rare; commits wait for
	// this one write.
	s.seqMu.Lock()
	upTo := s.seq
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keyDefinitions), data); err != nil {
			return err
		}
		for _, f := range fresh {
			if err := txn.Set([]byte(prefixEpoch+f.def.Name), binary.BigEndian.AppendUint64(nil, f.epoch)); err != nil {
				return err
			}
			if upTo > 0 {
				if err := txn.Set([]byte(prefixBackfill+f.def.Name), binary.BigEndian.AppendUint64(nil, upTo)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.seqMu.Unlock()
		return fmt.Errorf("store feature definitions: %w", err)
	}
	s.defs.Store(next)
	s.seqMu.Unlock()
	for _, f := range fresh {
		s.startBackfill(f, upTo)
	}
	return nil
}

// loadDefinitions reads the stored definitions at open.
func (s *Store) loadDefinitions() error {
	var defs []Definition
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyDefinitions))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &defs) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load feature definitions: %w", err)
	}
	list, err := compileAll(defs, s.opts.CompileFilter)
	if err != nil {
		return fmt.Errorf("load feature definitions: %w", err)
	}
	s.defs.Store(newFeatureSet(s.withHidden(list)))
	return nil
}

// HasStoredDefinitions reports whether definitions were ever stored, so the
// caller knows whether to seed the sample ones.
func (s *Store) HasStoredDefinitions() bool {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(keyDefinitions))
		return err
	})
	return err == nil
}

const prefixEpoch = keyspace.Epoch

// epoch returns the stored state epoch of a feature name (0 if none).
func (s *Store) epoch(name string) (uint64, error) {
	n, err := s.readUint64([]byte(prefixEpoch + name))
	if err != nil {
		return 0, fmt.Errorf("read state epoch of feature %s: %w", name, err)
	}
	return n, nil
}

// readUint64 reads an 8-byte big-endian counter stored at key; absent is 0.
func (s *Store) readUint64(key []byte) (uint64, error) {
	var n uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return n, err
}

// loadEpochs sets the state epoch of every feature of the live set, at
// Open: the stored one, or a new one for the features in fresh, whose state
// is about to be rebuilt from history.
func (s *Store) loadEpochs(fresh map[string]bool) error {
	for _, f := range s.defs.Load().list {
		var err error
		if fresh[f.def.Name] {
			f.epoch, err = s.nextEpoch(f.def.Name)
		} else {
			f.epoch, err = s.epoch(f.def.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nextEpoch stores and returns a new state epoch for a feature name, so
// every window kept under an earlier one reads as empty.
func (s *Store) nextEpoch(name string) (uint64, error) {
	n, err := s.epoch(name)
	if err != nil {
		return 0, err
	}
	n++
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(prefixEpoch+name), binary.BigEndian.AppendUint64(nil, n))
	}); err != nil {
		return 0, fmt.Errorf("store state epoch of feature %s: %w", name, err)
	}
	return n, nil
}

// indexKeys are the secondary index keys of a record: by outcome, account
// and card, each ending in the inverted evaluation time and the decision id
// so a forward scan is newest first. There is no time index of its own:
// the outcome indexes merged are one (Search), which saves a key per
// decision, about a twentieth of the write cost of a decision.
func indexKeys(rec *engine.Record) [][]byte {
	suffix := append(invTime(rec.EvaluatedAt), rec.ID...)
	key := func(prefix, value string) []byte {
		k := make([]byte, 0, len(prefix)+len(value)+1+len(suffix))
		k = append(k, prefix...)
		k = append(k, value...)
		k = append(k, 0)
		return append(k, suffix...)
	}
	keys := [][]byte{key(prefixOutcome, string(rec.Outcome))}
	if rec.Payment.Account.ID != "" {
		keys = append(keys, key(prefixAccount, rec.Payment.Account.ID))
	}
	if rec.Payment.Card.Fingerprint != "" {
		keys = append(keys, key(prefixCard, rec.Payment.Card.Fingerprint))
	}
	return keys
}

// invTime encodes t so that later times sort first.
func invTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, math.MaxUint64-uint64(t.UnixNano()))
}

func fromInvTime(b []byte) time.Time {
	return time.Unix(0, int64(math.MaxUint64-binary.BigEndian.Uint64(b)))
}

func seqBytes(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
