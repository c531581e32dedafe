package features

import (
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// migrateWindows moves feature windows stored one per feature and entity
// (prefix f/, the layout before entities) into entities, once, at Open.
// Windows of features no longer defined, or about to be rebuilt, are
// dropped. It holds every migrated entity in memory at once: the cost is
// paid a single time, on the first start of this version.
func (s *Store) migrateWindows() error {
	fs := s.defs.Load()
	ents := map[string]*entity{}
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixWindow), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			found = true
			name, values, _ := strings.Cut(string(it.Item().Key()[len(prefixWindow):]), "\x00")
			f := fs.byName[name]
			if f == nil {
				continue
			}
			data, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			w, err := decodeWindow(data)
			if err != nil {
				continue // corrupt: the feature restarts empty for this entity
			}
			w.name, w.epoch = f.def.Name, f.epoch
			key := f.spec + "\x00" + values
			e := ents[key]
			if e == nil {
				e = &entity{key: key}
				ents[key] = e
			}
			e.wins = append(e.wins, *w)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read feature windows to migrate: %w", err)
	}
	if !found {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for key, e := range ents {
		ttl := e.live(fs)
		if ttl == 0 {
			continue
		}
		entry := badger.NewEntry([]byte(prefixEntity+key), e.encode(nil, nil)).WithTTL(time.Duration(ttl))
		if err := wb.SetEntry(entry); err != nil {
			return fmt.Errorf("migrate feature windows: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("migrate feature windows: %w", err)
	}
	if err := s.db.DropPrefix([]byte(prefixWindow)); err != nil {
		return fmt.Errorf("drop migrated feature windows: %w", err)
	}
	return nil
}
