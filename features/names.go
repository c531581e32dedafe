package features

import (
	"encoding/binary"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/features/keyspace"
)

// Entities name each window by its feature. Written out, the names were
// half of an entity's bytes ("account_avg_amount_30d" for a window of 20),
// so version 2 of the entity encoding writes a small number instead,
// looked up in a table of names kept in Badger under m/fname/<name>. A
// number is assigned once, never reused or changed, and stored before the
// first entity that uses it is written.
const prefixName = keyspace.FeatureName // feature name -> its number (8 bytes)

// names maps feature names to their numbers and back. A *names is never
// modified once published; a new name makes a new one.
type names struct {
	ids   map[string]uint64
	names map[uint64]string
}

// id returns the number of name, if it has one.
func (n *names) id(name string) (uint64, bool) {
	if n == nil {
		return 0, false
	}
	id, ok := n.ids[name]
	return id, ok
}

// name returns the feature name numbered id, if any.
func (n *names) name(id uint64) (string, bool) {
	if n == nil {
		return "", false
	}
	name, ok := n.names[id]
	return name, ok
}

// nameTable publishes the names to readers without a lock and assigns
// new numbers.
type nameTable struct {
	mu  sync.Mutex // serialises ensureNames
	cur atomic.Pointer[names]
}

// loadNames reads the stored names at Open.
func (s *Store) loadNames() error {
	n := &names{ids: map[string]uint64{}, names: map[uint64]string{}}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixName), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			name := string(item.Key()[len(prefixName):])
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("number of feature %q: %w", name, errCorrupt)
				}
				id := binary.BigEndian.Uint64(v)
				n.ids[name], n.names[id] = id, name
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load feature names: %w", err)
	}
	s.names.cur.Store(n)
	return nil
}

// namesFor is ensureNames for a flush: when the numbers cannot be stored,
// the entities of features without one are written in version 1, which
// needs none, and the flush goes on.
func (s *Store) namesFor(fs *featureSet) *names {
	n, err := s.ensureNames(fs)
	if err != nil {
		s.opts.Log.Warn("feature names not stored; entities keep their names in full", "error", err)
	}
	return n
}

// ensureNames returns the names with a number for every feature of fs,
// storing numbers for those that had none. It costs a map lookup per
// feature when none is new, as on every flush but the first after a
// feature is defined.
func (s *Store) ensureNames(fs *featureSet) (*names, error) {
	n := s.names.cur.Load()
	missing := false
	for _, f := range fs.list {
		if _, ok := n.id(f.def.Name); !ok {
			missing = true
			break
		}
	}
	if !missing {
		return n, nil
	}
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	cur := s.names.cur.Load()
	next := &names{ids: maps.Clone(cur.ids), names: maps.Clone(cur.names)}
	var last uint64
	for id := range next.names {
		last = max(last, id)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, f := range fs.list {
			if _, ok := next.ids[f.def.Name]; ok {
				continue
			}
			last++
			id := last
			if err := txn.Set([]byte(prefixName+f.def.Name), binary.BigEndian.AppendUint64(nil, id)); err != nil {
				return err
			}
			next.ids[f.def.Name], next.names[id] = id, f.def.Name
		}
		return nil
	})
	if err != nil {
		return cur, fmt.Errorf("store feature names: %w", err)
	}
	s.names.cur.Store(next)
	return next, nil
}
