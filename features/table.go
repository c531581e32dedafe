package features

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
)

// A table holds what decision records repeat from one decision to the
// next: the fixed fields of every rule result (its engine.RuleInfo, which
// rules.Set.Evaluate points at) and the feature names, in the record's
// order. A v3 record names its table instead of carrying them. With 50
// rules that makes a record about a fifth of its v2 size, and a fifth of
// the value-log bytes written per decision and read per replayed one.
// Decoded records point at the table's RuleInfos, which nobody modifies.
//
// A table is stored without expiry under m/table/<id>, in the transaction
// of the first record that uses it (so it is durable with that record), and
// never changes. Its id is the first 16 bytes of the SHA-256 of its
// encoding, so equal tables share one key across restarts. Tables are few
// (one per published rule set and feature set), small, and cached.
type table struct {
	id       tableID
	rules    []engine.RuleInfo
	features []string
	enc      []byte // the stored value
	// stored is true once the table is known to be in Badger; until then
	// every transaction writing a record that uses it writes it too.
	stored atomic.Bool
}

// tableID names a table.
type tableID [16]byte

const (
	prefixTable = keyspace.Table // table id -> table
	// tableV1 is the format byte of a stored table, then: list Rules (str
	// ID, str Name, int Version, str Mode, str Action, int Score,
	// str Reason, str Message), list Features (str Name), as record.go
	// spells its types.
	tableV1 = 0x01
	// maxTables is how many tables the store keeps in memory.
	maxTables = 64
)

// errMissingTable is returned for a v3 record whose table cannot be found.
var errMissingTable = errors.New("record table not found")

// newTable returns the table of rec's rule results and feature values.
func newTable(rec *engine.Record) *table {
	t := &table{
		rules:    make([]engine.RuleInfo, len(rec.Rules)),
		features: make([]string, len(rec.Features)),
	}
	n := 1 + 2*binary.MaxVarintLen64
	for i := range rec.Rules {
		r := *rec.Rules[i].RuleInfo
		t.rules[i] = r
		n += strSize(r.ID) + strSize(r.Name) + intSize(int64(r.Version)) + strSize(string(r.Mode)) +
			strSize(string(r.Action)) + intSize(int64(r.Score)) + strSize(r.Reason) + strSize(r.Message)
	}
	for i := range rec.Features {
		t.features[i] = rec.Features[i].Name
		n += strSize(t.features[i])
	}
	b := make([]byte, 0, n)
	b = append(b, tableV1)
	b = binary.AppendUvarint(b, uint64(len(t.rules)))
	for i := range t.rules {
		r := &t.rules[i]
		b = appendString(b, r.ID)
		b = appendString(b, r.Name)
		b = binary.AppendVarint(b, int64(r.Version))
		b = appendString(b, string(r.Mode))
		b = appendString(b, string(r.Action))
		b = binary.AppendVarint(b, int64(r.Score))
		b = appendString(b, r.Reason)
		b = appendString(b, r.Message)
	}
	b = binary.AppendUvarint(b, uint64(len(t.features)))
	for _, name := range t.features {
		b = appendString(b, name)
	}
	t.enc = b
	t.id = sha256Prefix(b)
	return t
}

// matches reports whether t is the table of rec. It is on the path of
// every decision: the strings of a rule's info share their bytes with the
// table's copy, so each comparison is usually a pointer comparison.
func (t *table) matches(rec *engine.Record) bool {
	if len(t.rules) != len(rec.Rules) || len(t.features) != len(rec.Features) {
		return false
	}
	for i := range t.rules {
		if t.rules[i] != *rec.Rules[i].RuleInfo {
			return false
		}
	}
	for i, name := range t.features {
		if name != rec.Features[i].Name {
			return false
		}
	}
	return true
}

// decodeTable decodes a stored table. Its text fields share one copy of
// data, which the table keeps.
func decodeTable(id tableID, data []byte) (*table, error) {
	if sha256Prefix(data) != id {
		return nil, fmt.Errorf("table %x: content does not match its id: %w", id, errCorruptRecord)
	}
	if len(data) == 0 || data[0] != tableV1 {
		return nil, fmt.Errorf("table %x: unknown format: %w", id, errCorruptRecord)
	}
	d := recordDecoder{b: data, s: string(data), off: 1}
	t := &table{id: id, enc: data}
	t.rules = make([]engine.RuleInfo, d.count(8))
	for i := range t.rules {
		r := &t.rules[i]
		r.ID = d.string()
		r.Name = d.string()
		r.Version = d.int()
		r.Mode = engine.Mode(d.string())
		r.Action = engine.Action(d.string())
		r.Score = d.int()
		r.Reason = d.string()
		r.Message = d.string()
	}
	if n := d.count(1); n > 0 {
		t.features = make([]string, n)
		for i := range t.features {
			t.features[i] = d.string()
		}
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail()
	}
	if d.err != nil {
		return nil, fmt.Errorf("table %x: %w", id, d.err)
	}
	t.stored.Store(true)
	return t, nil
}

// sha256Prefix returns the id of a table encoded as b.
func sha256Prefix(b []byte) tableID {
	sum := sha256.Sum256(b)
	return tableID(sum[:16])
}

// tables is a Store's set of tables in memory. It is safe for concurrent
// use.
type tables struct {
	last  atomic.Pointer[table] // the table of the last record encoded
	mu    sync.Mutex            // serialises interning, so one id has one table
	cache *lru.Cache[tableID, *table]
}

func newTables() *tables {
	c, _ := lru.New[tableID, *table](maxTables) // size > 0: cannot fail
	return &tables{cache: c}
}

// of returns the table of rec, made if it is new.
func (ts *tables) of(rec *engine.Record) *table {
	if t := ts.last.Load(); t != nil && t.matches(rec) {
		return t
	}
	t := ts.intern(newTable(rec))
	ts.last.Store(t)
	return t
}

// intern caches t, or returns the cached table of its id.
func (ts *tables) intern(t *table) *table {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if known, ok := ts.cache.Get(t.id); ok {
		return known
	}
	ts.cache.Add(t.id, t)
	return t
}

// get returns the table id, reading it in txn if it is not cached.
func (ts *tables) get(txn *badger.Txn, id tableID) (*table, error) {
	if t, ok := ts.cache.Get(id); ok {
		return t, nil
	}
	item, err := txn.Get(append([]byte(prefixTable), id[:]...))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("table %x: %w: %w", id, errMissingTable, errCorruptRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("read table %x: %w", id, err)
	}
	data, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("read table %x: %w", id, err)
	}
	t, err := decodeTable(id, data)
	if err != nil {
		return nil, err
	}
	return ts.intern(t), nil
}

// write sets t in txn unless it is known to be stored. The caller sets
// t.stored once txn has committed.
func (t *table) write(txn *badger.Txn) error {
	if t.stored.Load() {
		return nil
	}
	return txn.Set(append([]byte(prefixTable), t.id[:]...), t.enc)
}
