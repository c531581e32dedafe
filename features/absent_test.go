package features

import (
	"strconv"
	"testing"
)

func TestStoredFilter(t *testing.T) {
	f := newStoredFilter(minFilterKeys)
	const n = 100_000
	for i := range n {
		f.add([]byte("card_n\x00fp_" + strconv.Itoa(i)))
	}
	for i := range n {
		if !f.mayContain([]byte("card_n\x00fp_" + strconv.Itoa(i))) {
			t.Fatalf("key %d added but reported absent", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayContain([]byte("card_n\x00other_" + strconv.Itoa(i))) {
			fp++
		}
	}
	// Far below its designed key count the filter is nearly exact.
	if rate := float64(fp) / n; rate > 0.01 {
		t.Errorf("false-positive rate %.4f, want at most 0.01", rate)
	}
	if f.full() {
		t.Errorf("full after %d keys, sized for %d", n, f.keys)
	}
}

func TestStoredFilterRebuiltWhenFull(t *testing.T) {
	s := New(Options{Dir: t.TempDir()})
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	small := s.stored.Load()
	small.added.Store(int64(small.keys) + 1)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.stored.Load(); got == small || got.keys <= small.keys {
		t.Errorf("filter not rebuilt larger: sized for %d keys, was %d", got.keys, small.keys)
	}
}
