package features

import (
	"math"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// TestEntityEncodingRoundTrip covers windows whose encoding is shorter and
// longer than one length byte (the length is written before the window).
func TestEntityEncodingRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := &feature{def: Definition{Name: "n", Aggregate: Count}, window: time.Hour, bucket: time.Minute, epoch: 3}
	g := &feature{def: Definition{Name: "cards", Aggregate: Distinct}, window: 24 * time.Hour, bucket: 15 * time.Minute, epoch: 1}
	e := &entity{}
	e.get(f).add(f, at, 0, 0, false)
	e.get(f).seq = 7
	wide := e.get(g)
	for i := range 40 { // dozens of exact values: well past 127 bytes
		wide.add(g, at.Add(time.Duration(i)*time.Minute), 0, uint64(i)*0x9e3779b97f4a7c15, true)
	}
	wide.seq = math.MaxUint32 + 5

	all := &names{ids: map[string]uint64{"n": 1, "cards": 2}, names: map[uint64]string{1: "n", 2: "cards"}}
	// The second window's name has no number: the entity falls back to
	// version 1 after writing the first window in version 2.
	partial := &names{ids: map[string]uint64{"n": 1}, names: map[uint64]string{1: "n"}}
	for _, tc := range []struct {
		name    string
		n       *names
		version byte
	}{{"numbered", all, entityVersion}, {"no table", nil, 1}, {"partial table", partial, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			data := e.encode([]byte("prefix"), tc.n)
			if string(data[:len("prefix")]) != "prefix" {
				t.Fatalf("encode overwrote what was before it: %q", data[:len("prefix")])
			}
			data = data[len("prefix"):]
			if data[0] != tc.version {
				t.Errorf("encoded in version %d, want %d", data[0], tc.version)
			}
			got, err := decodeEntity(data, all)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.wins) != 2 {
				t.Fatalf("decoded %d windows, want 2", len(got.wins))
			}
			for _, w := range []struct {
				f    *feature
				seq  uint64
				want float64
			}{{f, 7, 1}, {g, math.MaxUint32 + 5, 40}} {
				win := got.find(w.f)
				if win == nil {
					t.Fatalf("window of %s lost", w.f.def.Name)
				}
				if win.seq != w.seq || win.epoch != w.f.epoch {
					t.Errorf("%s: seq %d epoch %d, want %d and %d", w.f.def.Name, win.seq, win.epoch, w.seq, w.f.epoch)
				}
				if v := win.value(w.f, at.Add(time.Hour)); v != w.want {
					t.Errorf("%s = %v, want %v", w.f.def.Name, v, w.want)
				}
			}
			for cut := range len(data) {
				if _, err := decodeEntity(data[:cut], all); err == nil {
					t.Fatalf("truncated to %d of %d bytes: decoded without error", cut, len(data))
				}
			}
		})
	}
	if _, err := decodeEntity(e.encode(nil, all), partial); err == nil {
		t.Error("a number missing from the table decoded without error")
	}
}

// TestEntityEpoch: a window of an earlier state epoch reads as empty and is
// replaced, not added to, on the next update.
func TestEntityEpoch(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	old := &feature{def: Definition{Name: "n", Aggregate: Count}, window: time.Hour, bucket: time.Minute, epoch: 1}
	e := &entity{}
	for range 5 {
		e.get(old).add(old, at, 0, 0, false)
	}
	cur := *old
	cur.epoch = 2
	if w := e.find(&cur); w != nil {
		t.Fatalf("window of epoch 1 found for epoch 2")
	}
	e.get(&cur).add(&cur, at, 0, 0, false)
	if v := e.find(&cur).value(&cur, at); v != 1 {
		t.Errorf("after redefinition = %v, want 1", v)
	}
	if len(e.wins) != 1 {
		t.Errorf("entity holds %d windows, want 1", len(e.wins))
	}
	fs := newFeatureSet([]*feature{&cur})
	if ttl := e.live(fs); ttl != int64(time.Hour+2*time.Minute) {
		t.Errorf("ttl = %v", time.Duration(ttl))
	}
	if ttl := e.live(newFeatureSet(nil)); ttl != 0 || len(e.wins) != 0 {
		t.Errorf("deleted feature: ttl %d, %d windows left", ttl, len(e.wins))
	}
}

// TestMigrateWindows: windows stored one per feature (the layout before
// entities) are moved into entities on the next Open, values intact.
func TestMigrateWindows(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().UTC()
	defs := []Definition{
		{Name: "card_n", Entity: Paths{"card.fingerprint"}, Aggregate: Count, Window: "24h"},
		{Name: "card_sum", Entity: Paths{"card.fingerprint"}, Aggregate: Sum, Field: "amount", Window: "24h"},
		{Name: "pair_n", Entity: Paths{"card.fingerprint", "merchant.id"}, Aggregate: Count, Window: "24h"},
	}
	s := New(Options{Dir: dir, FlushInterval: time.Hour})
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	fs := s.defs.Load()
	// Write the old layout by hand: f/<feature>\0<values> -> window (v1).
	old := map[string]int64{"card_n\x00fp1": 3, "card_sum\x00fp1": 3, "pair_n\x00fp1\x00m1": 2, "gone\x00fp1": 9}
	wb := s.db.NewWriteBatch()
	for key, n := range old {
		f := fs.byKey(key)
		if f == nil {
			f = &feature{def: Definition{Name: "gone", Aggregate: Count}, window: time.Hour, bucket: time.Minute}
		}
		w := &window{}
		for range n {
			w.add(f, at, 100, 0, false)
		}
		v := w.encodeV2(nil)
		v = append([]byte{1}, v[2:]...) // version 1: no seq (seq 0 is one byte)
		if err := wb.Set([]byte(prefixWindow+key), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	s = New(Options{Dir: dir, FlushInterval: time.Hour})
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	p := engine.Payment{OccurredAt: at.Add(time.Second), Card: engine.Card{Fingerprint: "fp1"}, Merchant: engine.Merchant{ID: "m1"}}
	vals, err := s.Features(t.Context(), &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"card_n": 3, "card_sum": 300, "pair_n": 2}
	for _, v := range vals {
		if v.Value != want[v.Name] {
			t.Errorf("%s = %v after migration, want %v", v.Name, v.Value, want[v.Name])
		}
	}
	n := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixWindow)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d windows left in the old layout", n)
	}
}
