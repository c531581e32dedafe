package features

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// List kinds. A string list matches values exactly; a cidr list holds IP
// addresses and CIDR ranges and matches any IP inside one of them.
const (
	KindString = "string"
	KindCIDR   = "cidr"
)

// Bounds on lists.
const (
	MaxListItems     = 1_000_000
	MaxListValueLen  = 256
	MaxListReasonLen = 512
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

// Lists holds the named block and allow lists in memory for O(1) lookups
// on the payment path, and in Badger for durability. Changes are live for
// the next decision. It is safe for concurrent use.
type Lists struct {
	db  *badger.DB
	now func() time.Time

	mu    sync.RWMutex
	lists map[string]*memList
}

type memList struct {
	meta  List
	items map[string]Item
	// byLen maps each prefix length present in a cidr list to the masked
	// prefixes of that length, so a lookup costs one map probe per length.
	byLen map[int]map[netip.Prefix]time.Time
	// nextExpiry is the earliest expiry among items (zero: none expires);
	// expired items are purged from memory once it has passed.
	nextExpiry time.Time
}

const (
	prefixListMeta = "lm/"
	prefixListItem = "li/"
)

var listNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// NewLists returns the lists kept in db. Call Load before use.
func NewLists(db *badger.DB, now func() time.Time) *Lists {
	if now == nil {
		now = time.Now
	}
	return &Lists{db: db, now: now, lists: map[string]*memList{}}
}

// Load reads every list from Badger.
func (l *Lists) Load() error {
	lists := map[string]*memList{}
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixListMeta), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var m List
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
				it.Close()
				return err
			}
			lists[m.Name] = newMemList(m)
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixListItem), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var item struct {
				List string `json:"list"`
				Item
			}
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &item) }); err != nil {
				return err
			}
			if ml := lists[item.List]; ml != nil {
				ml.add(item.Item)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load lists: %w", err)
	}
	l.mu.Lock()
	l.lists = lists
	l.mu.Unlock()
	return nil
}

func newMemList(m List) *memList {
	ml := &memList{meta: m, items: map[string]Item{}}
	if m.Kind == KindCIDR {
		ml.byLen = map[int]map[netip.Prefix]time.Time{}
	}
	return ml
}

func (ml *memList) add(it Item) {
	ml.items[it.Value] = it
	if !it.ExpiresAt.IsZero() && (ml.nextExpiry.IsZero() || it.ExpiresAt.Before(ml.nextExpiry)) {
		ml.nextExpiry = it.ExpiresAt
	}
	if ml.byLen != nil {
		p, _ := parseRange(it.Value) // validated before it was stored
		m := ml.byLen[p.Bits()]
		if m == nil {
			m = map[netip.Prefix]time.Time{}
			ml.byLen[p.Bits()] = m
		}
		m[p] = it.ExpiresAt
	}
}

func (ml *memList) remove(value string) {
	delete(ml.items, value)
	if ml.byLen != nil {
		if p, err := parseRange(value); err == nil {
			delete(ml.byLen[p.Bits()], p)
			if len(ml.byLen[p.Bits()]) == 0 {
				delete(ml.byLen, p.Bits()) // Contains probes one map per length
			}
		}
	}
}

// purge forgets expired items once the earliest expiry has passed, so
// expired entries neither use memory nor count. Badger drops them itself
// (their keys carry a TTL). The caller holds the write lock.
func (ml *memList) purge(now time.Time) {
	if ml.nextExpiry.IsZero() || now.Before(ml.nextExpiry) {
		return
	}
	ml.nextExpiry = time.Time{}
	for v, it := range ml.items {
		switch {
		case it.ExpiresAt.IsZero():
		case !now.Before(it.ExpiresAt):
			ml.remove(v)
		case ml.nextExpiry.IsZero() || it.ExpiresAt.Before(ml.nextExpiry):
			ml.nextExpiry = it.ExpiresAt
		}
	}
}

// parseRange parses an IP or CIDR into a masked prefix. An IPv4-mapped
// IPv6 range becomes the IPv4 range, as lookups unmap addresses.
func parseRange(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// canonicalRange is how a cidr list stores a range: a single address
// without "/n", a range masked ("10.1.2.3/8" is "10.0.0.0/8").
func canonicalRange(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// Contains reports whether value is a live (unexpired) member of the named
// list. An unknown list contains nothing.
func (l *Lists) Contains(list, value string) bool {
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
	a, err := netip.ParseAddr(value)
	if err != nil {
		return false
	}
	a = a.Unmap()
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

func live(expires, now time.Time) bool { return expires.IsZero() || now.Before(expires) }

// Put creates a list or updates its description. Changing the kind of a
// list that holds items is a conflict.
func (l *Lists) Put(m List) (List, error) {
	if !listNamePattern.MatchString(m.Name) {
		return List{}, engine.Invalid("name", "invalid_name", "list names are 1 to 64 lowercase letters, digits, '_', '.' or '-', starting with a letter")
	}
	if m.Kind == "ip" {
		m.Kind = KindCIDR
	}
	if m.Kind != KindString && m.Kind != KindCIDR {
		return List{}, engine.Invalid("kind", "invalid_kind", "kind must be string, ip or cidr")
	}
	if len(m.Description) > MaxListReasonLen {
		return List{}, engine.Invalid("description", "too_long", "description is too long")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.lists[m.Name]; old != nil {
		if old.meta.Kind != m.Kind && len(old.items) > 0 {
			return List{}, fmt.Errorf("list %q holds %s items: %w", m.Name, old.meta.Kind, engine.ErrConflict)
		}
		m.CreatedAt, m.Author = old.meta.CreatedAt, old.meta.Author
	} else {
		m.CreatedAt = l.now().UTC()
	}
	data, _ := json.Marshal(m) // a List always encodes
	if err := l.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixListMeta+m.Name), data) }); err != nil {
		return List{}, fmt.Errorf("store list: %w", err)
	}
	ml := l.lists[m.Name]
	if ml == nil || ml.meta.Kind != m.Kind {
		ml = newMemList(m)
		l.lists[m.Name] = ml
	}
	ml.meta = m
	m.Items = len(ml.items)
	return m, nil
}

// Get returns a list's description.
func (l *Lists) Get(name string) (List, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return List{}, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	ml.purge(l.now())
	m := ml.meta
	m.Items = len(ml.items)
	return m, nil
}

// All returns every list, by name.
func (l *Lists) All() []List {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]List, 0, len(l.lists))
	for _, ml := range l.lists {
		ml.purge(now)
		m := ml.meta
		m.Items = len(ml.items)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Delete removes a list and its items. Decisions stop matching it at once.
func (l *Lists) Delete(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lists[name] == nil {
		return fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	// Items first, then the description: an interrupted delete leaves a
	// shorter list, never orphaned items that a list created later under
	// the same name would inherit. Deleting keys (rather than DropPrefix)
	// does not stall the decision writes.
	prefix := []byte(prefixListItem + name + "\x00")
	var keys [][]byte
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete list: %w", err)
	}
	wb := l.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("delete list: %w", err)
		}
	}
	if err := wb.Delete([]byte(prefixListMeta + name)); err != nil {
		return fmt.Errorf("delete list: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete list: %w", err)
	}
	delete(l.lists, name)
	return nil
}

// AddItems adds or replaces items in a list, all or nothing, and returns
// them as stored: with their creation time and, in a cidr list, their
// canonical value ("10.1.2.3/8" is stored as "10.0.0.0/8"). Errors name the
// field at fault: "value" for a single item, "items[i].value" otherwise.
func (l *Lists) AddItems(name string, items []Item) ([]Item, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return nil, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	now := l.now().UTC()
	ml.purge(now)
	if len(items) == 0 {
		return nil, engine.Invalid("items", "required", "at least one item is required")
	}
	if len(ml.items)+len(items) > MaxListItems {
		return nil, engine.Invalid("items", "too_many", fmt.Sprintf("a list holds at most %d items", MaxListItems))
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
		case len(it.Value) > MaxListValueLen:
			return nil, engine.Invalid(field("value"), "too_long", fmt.Sprintf("value is longer than %d characters", MaxListValueLen))
		case len(it.Reason) > MaxListReasonLen:
			return nil, engine.Invalid(field("reason"), "too_long", fmt.Sprintf("reason is longer than %d characters", MaxListReasonLen))
		case !it.ExpiresAt.IsZero() && !it.ExpiresAt.After(now):
			return nil, engine.Invalid(field("expires_at"), "in_past", "expires_at must be in the future")
		}
		if ml.byLen != nil {
			p, err := parseRange(it.Value)
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
	err := l.db.Update(func(txn *badger.Txn) error {
		for _, it := range items {
			data, _ := json.Marshal(struct {
				List string `json:"list"`
				Item
			}{name, it}) // always encodes
			e := badger.NewEntry([]byte(prefixListItem+name+"\x00"+it.Value), data)
			if !it.ExpiresAt.IsZero() {
				e = e.WithTTL(it.ExpiresAt.Sub(now) + time.Second)
			}
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store list items: %w", err)
	}
	for _, it := range items {
		ml.add(it)
	}
	return items, nil
}

// DeleteItem removes one item from a list and returns it. In a cidr list
// value may be written in any form of the range ("10.1.2.3/8").
func (l *Lists) DeleteItem(name, value string) (Item, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ml := l.lists[name]
	if ml == nil {
		return Item{}, fmt.Errorf("list %q: %w", name, engine.ErrNotFound)
	}
	ml.purge(l.now())
	if ml.byLen != nil {
		if p, err := parseRange(value); err == nil {
			value = canonicalRange(p)
		}
	}
	it, ok := ml.items[value]
	if !ok {
		return Item{}, fmt.Errorf("item %q in list %q: %w", value, name, engine.ErrNotFound)
	}
	if err := l.db.Update(func(txn *badger.Txn) error {
		return txn.Delete([]byte(prefixListItem + name + "\x00" + value))
	}); err != nil {
		return Item{}, fmt.Errorf("delete list item: %w", err)
	}
	ml.remove(value)
	return it, nil
}

// Items returns up to limit live items of a list in value order, starting
// after the value `after`, and whether more follow. limit is 1 to 1000; any
// other value means 100.
func (l *Lists) Items(name, after string, limit int) ([]Item, bool, error) {
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
