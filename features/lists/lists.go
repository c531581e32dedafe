// Package lists keeps the named block and allow lists the rules match
// against: in memory for O(1) lookups on the payment path, in Badger for
// durability, with stored types of their own (stored.go) so that the API's
// JSON can change without changing what is on disk.
package lists

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
)

// List kinds. A string list matches values exactly; a cidr list holds IP
// addresses and CIDR ranges and matches any IP inside one of them.
const (
	KindString = "string"
	KindCIDR   = "cidr"
)

// Bounds on lists.
const (
	MaxItems     = 1_000_000
	MaxValueLen  = 256
	MaxReasonLen = 512
)

// List describes a named list.
type List struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Description string    `json:"description,omitempty"`
	Author      string    `json:"author,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Items       int       `json:"items"`
}

// Item is one list entry. A zero ExpiresAt never expires.
type Item struct {
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Store holds the named block and allow lists in memory for O(1) lookups
// on the payment path, and in Badger for durability. Changes are live for
// the next decision. It is safe for concurrent use.
type Store struct {
	db  kv.DB
	now func() time.Time

	// wmu serialises changes, and the reads that purge expired items;
	// whoever holds it may read the maps without mu. mu guards the maps
	// only for the instant they change, so the payment path (Contains,
	// under mu.RLock) never waits for a Badger write.
	wmu   sync.Mutex
	mu    sync.RWMutex
	lists map[string]*memList
}

// Badger keys of the lists, from the registry: lm/<name> holds a list's
// description (storedList), li/<name>\x00<value> one item (storedItem).
const (
	prefixListMeta = keyspace.ListMeta
	prefixListItem = keyspace.ListItem
)

// loadTimeout bounds one read or write of the lists' records.
const loadTimeout = 30 * time.Second

// deleteChunk is how many keys one transaction of Delete removes.
const deleteChunk = 1000

var listNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// New returns the lists kept in db. Call Load before use.
func New(db kv.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now, lists: map[string]*memList{}}
}

// Load reads every list from the store, replacing what is in memory. In
// cluster mode it runs again whenever another node changed a list.
func (l *Store) Load() error {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	lists := map[string]*memList{}
	now := l.now()
	err := l.db.View(ctx, func(tx kv.Tx) error {
		err := tx.Scan([]byte(prefixListMeta), kv.ScanOptions{}, func(_, v []byte) error {
			m, err := decodeList(v)
			if err != nil {
				return err
			}
			lists[m.Name] = newMemList(m)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan([]byte(prefixListItem), kv.ScanOptions{}, func(_, v []byte) error {
			list, item, err := decodeItem(v)
			if err != nil {
				return err
			}
			if ml := lists[list]; ml != nil && (item.ExpiresAt.IsZero() || item.ExpiresAt.After(now)) {
				ml.add(item)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load lists: %w", err)
	}
	l.wmu.Lock()
	l.mu.Lock()
	l.lists = lists
	l.mu.Unlock()
	l.wmu.Unlock()
	return nil
}

// Contains reports whether value is a live (unexpired) member of the named
// list. An unknown list contains nothing.
func (l *Store) Contains(list, value string) bool {
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	ml := l.lists[list]
	if ml == nil {
		return false
	}
	if ml.byLen == nil {
		it, ok := ml.items[value]
		return ok && live(it.ExpiresAt, now)
	}
	a, ok := ParseIP(value)
	if !ok {
		return false
	}
	for bits, m := range ml.byLen {
		if bits > a.BitLen() {
			continue
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if exp, ok := m[p]; ok && live(exp, now) {
			return true
		}
	}
	return false
}

// Put creates a list or updates its description. Changing the kind of a
// list that holds items is a conflict.
func (l *Store) Put(m List) (List, error) {
	if !listNamePattern.MatchString(m.Name) {
		return List{}, engine.Invalid("name", "invalid_name", "list names are 1 to 64 lowercase letters, digits, '_', '.' or '-', starting with a letter")
	}
	if m.Kind == "ip" {
		m.Kind = KindCIDR
	}
	if m.Kind != KindString && m.Kind != KindCIDR {
		return List{}, engine.Invalid("kind", "invalid_kind", "kind must be string, ip or cidr")
	}
	if len(m.Description) > MaxReasonLen {
		return List{}, engine.Invalid("description", "too_long", "description is too long")
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if old := l.lists[m.Name]; old != nil {
		if old.meta.Kind != m.Kind && len(old.items) > 0 {
			return List{}, fmt.Errorf("list %q holds %s items: %w", m.Name, old.meta.Kind, engine.ErrConflict)
		}
		m.CreatedAt, m.Author = old.meta.CreatedAt, old.meta.Author
	} else {
		m.CreatedAt = l.now().UTC()
	}
	data := encodeList(m)
	if err := kv.Set(context.Background(), l.db, []byte(prefixListMeta+m.Name), data); err != nil {
		return List{}, fmt.Errorf("store list: %w", err)
	}
	l.mu.Lock()
	ml := l.lists[m.Name]
	if ml == nil || ml.meta.Kind != m.Kind {
		ml = newMemList(m)
		l.lists[m.Name] = ml
	}
	ml.meta = m
	l.mu.Unlock()
	m.Items = len(ml.items)
	return m, nil
}

// Get returns a list's description.
func (l *Store) Get(name string) (List, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return List{}, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	l.purge(ml)
	m := ml.meta
	m.Items = len(ml.items)
	return m, nil
}

// All returns every list, by name.
func (l *Store) All() []List {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	out := make([]List, 0, len(l.lists))
	for _, ml := range l.lists {
		l.purge(ml)
		m := ml.meta
		m.Items = len(ml.items)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Delete removes a list and its items. Decisions stop matching it at once.
func (l *Store) Delete(name string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.lists[name] == nil {
		return fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	// Items first, then the description: an interrupted delete leaves a
	// shorter list, never orphaned items that a list created later under
	// the same name would inherit. Deleting keys (rather than DropPrefix)
	// does not stall the decision writes.
	prefix := []byte(prefixListItem + name + "\x00")
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	var keys [][]byte
	err := l.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(prefix, kv.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("delete list: %w", err)
	}
	keys = append(keys, []byte(prefixListMeta+name))
	for len(keys) > 0 {
		n := min(len(keys), deleteChunk)
		err := l.db.Update(ctx, func(tx kv.Tx) error {
			for _, k := range keys[:n] {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete list: %w", err)
		}
		keys = keys[n:]
	}
	l.mu.Lock()
	delete(l.lists, name)
	l.mu.Unlock()
	return nil
}

// AddItems adds or replaces items in a list, all or nothing, and returns
// them as stored: with their creation time and, in a cidr list, their
// canonical value ("10.1.2.3/8" is stored as "10.0.0.0/8"). Errors name the
// field at fault: "value" for a single item, "items[i].value" otherwise.
func (l *Store) AddItems(name string, items []Item) ([]Item, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return nil, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	now := l.now().UTC()
	l.purge(ml)
	if len(items) == 0 {
		return nil, engine.Invalid("items", "required", "at least one item is required")
	}
	if len(ml.items)+len(items) > MaxItems {
		return nil, engine.Invalid("items", "too_many", fmt.Sprintf("a list holds at most %d items", MaxItems))
	}
	items = append([]Item(nil), items...)
	for i := range items {
		it := &items[i]
		field := func(f string) string {
			if len(items) == 1 {
				return f
			}
			return fmt.Sprintf("items[%d].%s", i, f)
		}
		switch {
		case it.Value == "":
			return nil, engine.Invalid(field("value"), "required", "value is required")
		case len(it.Value) > MaxValueLen:
			return nil, engine.Invalid(field("value"), "too_long", fmt.Sprintf("value is longer than %d characters", MaxValueLen))
		case len(it.Reason) > MaxReasonLen:
			return nil, engine.Invalid(field("reason"), "too_long", fmt.Sprintf("reason is longer than %d characters", MaxReasonLen))
		case !it.ExpiresAt.IsZero() && !it.ExpiresAt.After(now):
			return nil, engine.Invalid(field("expires_at"), "in_past", "expires_at must be in the future")
		}
		if ml.byLen != nil {
			p, err := ParseRange(it.Value)
			if err != nil {
				return nil, engine.Invalid(field("value"), "invalid_ip", fmt.Sprintf("%q is not an IP address or CIDR range", it.Value))
			}
			it.Value = canonicalRange(p)
		}
		it.CreatedAt = now
		if !it.ExpiresAt.IsZero() {
			it.ExpiresAt = it.ExpiresAt.UTC()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	err := l.db.Update(ctx, func(tx kv.Tx) error {
		for _, it := range items {
			key, data := []byte(prefixListItem+name+"\x00"+it.Value), encodeItem(name, it)
			var err error
			if it.ExpiresAt.IsZero() {
				err = tx.Set(key, data)
			} else {
				err = tx.SetTTL(key, data, it.ExpiresAt.Sub(now)+time.Second)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store list items: %w", err)
	}
	l.mu.Lock()
	for _, it := range items {
		ml.add(it)
	}
	l.mu.Unlock()
	return items, nil
}

// DeleteItem removes one item from a list and returns it. In a cidr list
// value may be written in any form of the range ("10.1.2.3/8").
func (l *Store) DeleteItem(name, value string) (Item, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return Item{}, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	l.purge(ml)
	if ml.byLen != nil {
		if p, err := ParseRange(value); err == nil {
			value = canonicalRange(p)
		}
	}
	it, ok := ml.items[value]
	if !ok {
		return Item{}, fmt.Errorf("item %q in list %q: %w", value, name, engine.ErrNotFound)
	}
	if err := kv.Delete(context.Background(), l.db, []byte(prefixListItem+name+"\x00"+value)); err != nil {
		return Item{}, fmt.Errorf("delete list item: %w", err)
	}
	l.mu.Lock()
	ml.remove(value)
	l.mu.Unlock()
	return it, nil
}

// Items returns up to limit live items of a list in value order, starting
// after the value `after`, and whether more follow. limit is 1 to 1000; any
// other value means 100.
func (l *Store) Items(name, after string, limit int) ([]Item, bool, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	ml := l.lists[name]
	if ml == nil {
		return nil, false, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	values := make([]string, 0, min(len(ml.items), 4*limit))
	for v, it := range ml.items {
		if v > after && live(it.ExpiresAt, now) {
			values = append(values, v)
		}
	}
	sort.Strings(values)
	more := len(values) > limit
	values = values[:min(limit, len(values))]
	out := make([]Item, len(values))
	for i, v := range values {
		out[i] = ml.items[v]
	}
	return out, more, nil
}

// Expiry returns the expiry of a live item of a string list, and whether
// there is such an item; a zero time never expires.
func (l *Store) Expiry(list, value string) (time.Time, bool) {
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	ml := l.lists[list]
	if ml == nil {
		return time.Time{}, false
	}
	it, ok := ml.items[value]
	if !ok || !live(it.ExpiresAt, now) {
		return time.Time{}, false
	}
	return it.ExpiresAt, true
}
