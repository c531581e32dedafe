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
)

// featureSet is an immutable set of compiled definitions, swapped whole.
type featureSet struct {
	list   []*feature
	byName map[string]*feature
}

func newFeatureSet(list []*feature) *featureSet {
	fs := &featureSet{list: list, byName: make(map[string]*feature, len(list))}
	for _, f := range list {
		fs.byName[f.def.Name] = f
	}
	return fs
}

// byKey returns the feature a window key belongs to (the name before the
// first NUL), or nil.
func (fs *featureSet) byKey(key string) *feature {
	name, _, _ := strings.Cut(key, "\x00")
	return fs.byName[name]
}

// Features implements engine.FeatureSource. A feature whose entity is
// absent from p reads as its empty value (0, or -1 for first_seen and
// last_seen). When ctx ends, the features not yet read are left out and the
// error says so.
func (s *Store) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	fs := s.defs.Load()
	var keyBuf [128]byte
	for _, f := range fs.list {
		if f.hidden {
			continue
		}
		if err := ctx.Err(); err != nil {
			return dst, fmt.Errorf("read features: %w", err)
		}
		fv := engine.FeatureValue{Name: f.def.Name, Value: emptyValue(f), Ready: s.ready(f)}
		key, ok := f.entityKey(p, keyBuf[:0])
		if ok {
			err := s.ws.with(key, func(w *window) bool {
				fv.Value = w.value(f, p.OccurredAt)
				return false
			})
			if err != nil {
				return dst, fmt.Errorf("read feature %s: %w", f.def.Name, err)
			}
		}
		dst = append(dst, fv)
	}
	return dst, nil
}

func emptyValue(f *feature) float64 {
	if f.def.Aggregate == FirstSeen || f.def.Aggregate == LastSeen {
		return -1
	}
	return 0
}

// apply records one decided payment into every feature of fs it matches.
func (s *Store) apply(rec *engine.Record, fs *featureSet) {
	for _, f := range fs.list {
		s.applyOne(rec, f, false)
	}
}

// replayOne is apply for the start-up replay of the decision log: a window
// that already holds rec (its stored seq is at or past rec.Seq, because it
// was written after rec was applied) is left alone.
func (s *Store) replayOne(rec *engine.Record, fs *featureSet) {
	for _, f := range fs.list {
		s.applyOne(rec, f, true)
	}
}

// applyOne records rec into f. With replay set, a window whose seq shows it
// already holds rec is not changed.
func (s *Store) applyOne(rec *engine.Record, f *feature, replay bool) {
	p := &rec.Payment
	if f.where != nil {
		ok, err := f.where.Match(rec)
		if err != nil || !ok {
			return
		}
	}
	var keyBuf [128]byte
	key, ok := f.entityKey(p, keyBuf[:0])
	if !ok {
		return
	}
	var v float64
	var h uint64
	distinct := f.def.Aggregate == Distinct
	if f.amount != nil {
		if v, ok = f.amount(rec); !ok {
			return
		}
	} else if f.def.Field != "" {
		raw, ok := p.Field(f.def.Field)
		if !ok {
			return
		}
		if distinct {
			h = xxhash.Sum64(appendValue(nil, raw))
		} else if v, ok = number(raw); !ok {
			return
		}
	}
	err := s.ws.with(key, func(w *window) bool {
		if replay && w.seq >= rec.Seq {
			return false
		}
		w.add(f, p.OccurredAt, v, h, distinct)
		w.seq = max(w.seq, rec.Seq)
		return true
	})
	if err != nil {
		s.opts.Log.Error("update feature", "feature", f.def.Name, "err", err)
	}
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
func (s *Store) SetDefinitions(ctx context.Context, defs []Definition) error {
	list, err := compileAll(defs, s.opts.CompileFilter)
	if err != nil {
		return err
	}
	data, err := json.Marshal(defs)
	if err != nil {
		return fmt.Errorf("encode feature definitions: %w", err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyDefinitions), data) }); err != nil {
		return fmt.Errorf("store feature definitions: %w", err)
	}
	next := newFeatureSet(s.withHidden(list))
	s.seqMu.Lock()
	prev := s.defs.Load()
	s.defs.Store(next)
	upTo := s.seq
	s.seqMu.Unlock()
	for _, f := range list {
		old, existed := prev.byName[f.def.Name]
		if existed && sameDefinition(old.def, f.def) {
			continue
		}
		if existed {
			s.dropState(f.def.Name)
		}
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

// dropState forgets the in-memory and stored windows of a redefined
// feature, so its new definition starts from history, not from the old
// definition's counts.
func (s *Store) dropState(name string) {
	prefix := append([]byte(prefixWindow), name...)
	prefix = append(prefix, 0)
	for i := range s.ws.shards {
		sh := &s.ws.shards[i]
		sh.mu.Lock()
		for _, k := range sh.lru.Keys() {
			if strings.HasPrefix(k, name+"\x00") {
				sh.lru.Remove(k)
			}
		}
		for k := range sh.dirty {
			if strings.HasPrefix(k, name+"\x00") {
				delete(sh.dirty, k)
			}
		}
		sh.mu.Unlock()
	}
	if err := s.db.DropPrefix(prefix); err != nil {
		s.opts.Log.Error("drop feature state", "feature", name, "err", err)
	}
}

// indexKeys are the secondary index keys of a record: by account, card,
// outcome and time, each ending in the inverted evaluation time and the
// decision id so a forward scan is newest first.
func indexKeys(rec *engine.Record) [][]byte {
	suffix := append(invTime(rec.EvaluatedAt), rec.ID...)
	key := func(prefix, value string) []byte {
		k := make([]byte, 0, len(prefix)+len(value)+1+len(suffix))
		k = append(k, prefix...)
		if value != "" || prefix != prefixTime {
			k = append(k, value...)
			k = append(k, 0)
		}
		return append(k, suffix...)
	}
	keys := [][]byte{key(prefixOutcome, string(rec.Outcome)), key(prefixTime, "")}
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
