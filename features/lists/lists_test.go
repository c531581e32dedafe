package lists_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/lists"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openDB opens a store in dir and returns its kv.DB; the store is closed
// when the test ends.
func openDB(tb testing.TB, dir string) kv.DB {
	tb.Helper()
	s := features.New(features.Options{Dir: dir})
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return s.KV()
}

func newLists(tb testing.TB, db kv.DB, now func() time.Time) *lists.Store {
	tb.Helper()
	l := lists.New(db, now)
	if err := l.Load(); err != nil {
		tb.Fatal(err)
	}
	return l
}

func TestListsPersistAndExpire(t *testing.T) {
	s := openDB(t, t.TempDir())
	clock := &fakeClock{t: time.Now()}
	l := newLists(t, s, clock.Now)
	for _, m := range []lists.List{{Name: "ips", Kind: "ip"}, {Name: "ips_v2", Kind: "cidr"}, {Name: "cards", Kind: "string"}} {
		if _, err := l.Put(m); err != nil {
			t.Fatal(err)
		}
	}
	items := []lists.Item{
		{Value: "10.1.2.3/8"}, {Value: "::ffff:192.0.2.0/120"}, {Value: "2001:db8::1"},
		{Value: "203.0.113.0/24", ExpiresAt: clock.Now().Add(time.Hour)},
	}
	stored, err := l.AddItems("ips", items)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{stored[0].Value, stored[1].Value, stored[2].Value}; fmt.Sprint(got) != "[10.0.0.0/8 192.0.2.0/24 2001:db8::1]" {
		t.Errorf("canonical values %v", got)
	}
	if _, err := l.AddItems("ips_v2", []lists.Item{{Value: "10.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddItems("cards", []lists.Item{{Value: "fp_1", ExpiresAt: clock.Now().Add(time.Minute)}, {Value: "fp_2"}}); err != nil {
		t.Fatal(err)
	}

	check := func(l *lists.Store, when string, want map[[2]string]bool) {
		t.Helper()
		for k, w := range want {
			if got := l.Contains(k[0], k[1]); got != w {
				t.Errorf("%s: Contains(%s, %s) = %v, want %v", when, k[0], k[1], got, w)
			}
		}
	}
	check(l, "fresh", map[[2]string]bool{
		{"ips", "10.200.1.1"}: true, {"ips", "11.0.0.1"}: false, {"ips", "192.0.2.77"}: true,
		{"ips", "::ffff:192.0.2.77"}: true, {"ips", "2001:db8::1"}: true, {"ips", "2001:db8::2"}: false,
		{"ips", "203.0.113.9"}: true, {"cards", "fp_1"}: true, {"cards", "fp_2"}: true, {"nope", "x"}: false,
	})

	// Deleting a list leaves the lists whose names it prefixes alone.
	if err := l.Delete("ips"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DeleteItem("ips", "10.0.0.0/8"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("DeleteItem on a deleted list = %v", err)
	}
	reloaded := newLists(t, s, clock.Now)
	if _, err := reloaded.Get("ips"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("deleted list reloaded: %v", err)
	}
	if got, err := reloaded.Get("ips_v2"); err != nil || got.Items != 1 {
		t.Errorf("ips_v2 after deleting ips: %+v, %v", got, err)
	}
	check(reloaded, "reloaded", map[[2]string]bool{{"ips_v2", "10.9.9.9"}: true, {"ips", "10.9.9.9"}: false, {"cards", "fp_1"}: true})

	// Expired items stop matching and counting; the others stay.
	clock.Advance(2 * time.Minute)
	check(reloaded, "expired", map[[2]string]bool{{"cards", "fp_1"}: false, {"cards", "fp_2"}: true})
	if got, _ := reloaded.Get("cards"); got.Items != 1 {
		t.Errorf("cards counts %d items after expiry, want 1", got.Items)
	}
	if _, err := reloaded.DeleteItem("cards", "fp_1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("DeleteItem of an expired item = %v", err)
	}
	removed, err := reloaded.DeleteItem("cards", "fp_2")
	if err != nil || removed.Value != "fp_2" {
		t.Errorf("DeleteItem = %+v, %v", removed, err)
	}
}

func TestListsRefuse(t *testing.T) {
	s := openDB(t, t.TempDir())
	l := newLists(t, s, nil)
	if _, err := l.Put(lists.List{Name: "ips", Kind: "cidr"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		items []lists.Item
		field string
	}{
		{"none", nil, "items"},
		{"empty value", []lists.Item{{Value: ""}}, "value"},
		{"not an ip", []lists.Item{{Value: "10.0.0.1"}, {Value: "ten"}}, "items[1].value"},
		{"zone", []lists.Item{{Value: "fe80::1%eth0"}}, "value"},
		{"past expiry", []lists.Item{{Value: "10.0.0.1"}, {Value: "10.0.0.2", ExpiresAt: time.Now().Add(-time.Second)}}, "items[1].expires_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.AddItems("ips", tt.items)
			var fe *engine.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("AddItems = %v, want a field error on %s", err, tt.field)
			}
		})
	}
	if got, _ := l.Get("ips"); got.Items != 0 {
		t.Errorf("refused batches stored %d items", got.Items)
	}
}

// BenchmarkContainsCIDR10k is the payment-path lookup in a list of 10,000
// ranges of many lengths: one map probe per distinct length.
func BenchmarkContainsCIDR10k(b *testing.B) {
	s := openDB(b, b.TempDir())
	l := newLists(b, s, nil)
	if _, err := l.Put(lists.List{Name: "ips", Kind: "cidr"}); err != nil {
		b.Fatal(err)
	}
	var items []lists.Item
	for i := range 10000 {
		items = append(items, lists.Item{Value: fmt.Sprintf("10.%d.%d.0/%d", i/256%256, i%256, 16+i%9)})
	}
	if _, err := l.AddItems("ips", items); err != nil {
		b.Fatal(err)
	}
	hit := 0
	for b.Loop() {
		if l.Contains("ips", "10.3.7.9") {
			hit++
		}
	}
	if hit == 0 {
		b.Fatal("10.3.7.9 not found")
	}
}

// TestListsConcurrent runs lookups while lists change, for the race
// detector: lookups only ever see whole changes.
func TestListsConcurrent(t *testing.T) {
	s := openDB(t, t.TempDir())
	clock := &fakeClock{t: time.Now()}
	l := newLists(t, s, clock.Now)
	if _, err := l.Put(lists.List{Name: "ips", Kind: "cidr"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.Contains("ips", "10.1.2.3")
				if _, _, err := l.Items("ips", "", 10); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		v := fmt.Sprintf("10.%d.0.0/16", i)
		if _, err := l.AddItems("ips", []lists.Item{{Value: v, ExpiresAt: clock.Now().Add(time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second) // items expire along the way
		if _, err := l.Get("ips"); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := l.DeleteItem("ips", v); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if got, _ := l.Get("ips"); got.Items > 6 {
		t.Errorf("%d items live, want at most 6 (one minute of ten-second adds)", got.Items)
	}
}
