// Package kvtest is the contract every kv.DB implementation passes: the
// Badger store of a single node and the PostgreSQL store of cluster mode run
// the same suite, so the stores built on kv.DB behave the same on both.
//
// An implementation's test calls Run with a function that opens an empty
// database of its own for each subtest:
//
//	func TestKV(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.DB { return openFresh(t).KV() })
//	}
//
// The database may hold keys of the implementation's own (a features.Store
// writes its metadata at Open); the suite keeps its keys under prefixes of
// its own and checks only those, apart from the byte-boundary cases, which
// use keys starting with 0xfe and 0xff bytes.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/riskengine/risk/features/kv"
)

// Run runs the contract against the databases open returns; each subtest
// opens one and runs in parallel with the others. open must register its
// own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) kv.DB) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, db kv.DB)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"EmptyValue", testEmptyValue},
		{"SlicesAreTheCallers", testSlicesAreTheCallers},
		{"SetTTL", testSetTTL},
		{"ScanOrder", testScanOrder},
		{"ScanFrom", testScanFrom},
		{"ScanKeysOnly", testScanKeysOnly},
		{"ScanStop", testScanStop},
		{"ScanPrefixBoundaries", testScanPrefixBoundaries},
		{"ScanAllFF", testScanAllFF},
		{"ScanEmptyPrefix", testScanEmptyPrefix},
		{"ScanManyWithWrites", testScanManyWithWrites},
		{"ScanDeleting", testScanDeleting},
		{"UpdateAtomic", testUpdateAtomic},
		{"ReadYourWrites", testReadYourWrites},
		{"ViewIsolation", testViewIsolation},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"Conflicts", testConflicts},
		{"CancelledContext", testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// errBoom is what callbacks return to make an Update fail on purpose.
var errBoom = errors.New("kvtest: boom")

func testGetSetDelete(t *testing.T, db kv.DB) {
	ctx := context.Background()
	key := []byte("kvtest/a")
	if _, err := kv.Get(ctx, db, key); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get of an absent key: err = %v, want ErrNotFound", err)
	}
	mustSet(t, db, key, []byte("one"))
	wantValue(t, db, key, "one")
	mustSet(t, db, key, []byte("two"))
	wantValue(t, db, key, "two")
	if err := kv.Delete(ctx, db, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantAbsent(t, db, key)
	if err := kv.Delete(ctx, db, key); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
	// A key that is a prefix of another is a key of its own.
	mustSet(t, db, []byte("kvtest/ab"), []byte("ab"))
	wantAbsent(t, db, key)
	wantValue(t, db, []byte("kvtest/ab"), "ab")
}

func testEmptyValue(t *testing.T, db kv.DB) {
	for _, tt := range []struct {
		name  string
		value []byte
	}{{"nil", nil}, {"empty", []byte{}}} {
		key := []byte("kvtest/" + tt.name)
		mustSet(t, db, key, tt.value)
		got, err := kv.Get(context.Background(), db, key)
		if err != nil || len(got) != 0 {
			t.Errorf("Get after Set(%s value) = %q, %v; want an empty value", tt.name, got, err)
		}
	}
}

func testSlicesAreTheCallers(t *testing.T, db kv.DB) {
	ctx := context.Background()
	key := []byte("kvtest/k")
	value := []byte("value")
	mustUpdate(t, db, func(tx kv.Tx) error {
		if err := tx.Set(key, value); err != nil {
			return err
		}
		// The caller reuses its buffers once Set has returned.
		key[len(key)-1] = 'X'
		value[0] = 'X'
		return nil
	})
	key[len(key)-1] = 'k'
	wantValue(t, db, key, "value")
	wantAbsent(t, db, []byte("kvtest/X"))

	got, err := kv.Get(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'Y'
	wantValue(t, db, key, "value")

	mustUpdate(t, db, func(tx kv.Tx) error {
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		v[0] = 'Z'
		v, err = tx.Get(key)
		if err != nil {
			return err
		}
		if string(v) != "value" {
			return fmt.Errorf("second Get in the transaction = %q after the first one's slice was changed", v)
		}
		return nil
	})
	wantValue(t, db, key, "value")
}

func testSetTTL(t *testing.T, db kv.DB) {
	short, long, made := []byte("kvtest/short"), []byte("kvtest/long"), []byte("kvtest/made-permanent")
	began := time.Now()
	mustUpdate(t, db, func(tx kv.Tx) error {
		if err := tx.SetTTL(short, []byte("s"), 3*time.Second); err != nil {
			return err
		}
		if err := tx.SetTTL(long, []byte("l"), time.Hour); err != nil {
			return err
		}
		if err := tx.SetTTL(made, []byte("m"), 3*time.Second); err != nil {
			return err
		}
		return nil
	})
	// Implementations may round expiry to whole seconds, which still
	// leaves a 3s key readable for two. A machine that stalled the test
	// for longer may have let it expire: only a read that ended within two
	// seconds of the write must find it.
	switch v, err := kv.Get(context.Background(), db, short); {
	case errors.Is(err, kv.ErrNotFound):
		if took := time.Since(began); took < 2*time.Second {
			t.Errorf("a key set with a 3s TTL is gone %v after the write", took)
		}
	case err != nil:
		t.Fatalf("Get of an expiring key: %v", err)
	case string(v) != "s":
		t.Errorf("Get of an expiring key = %q, want %q", v, "s")
	}
	wantValue(t, db, long, "l")
	// Set replaces the key with one that does not expire.
	mustSet(t, db, made, []byte("M"))

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kv.Get(context.Background(), db, short)
		if errors.Is(err, kv.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Get of an expiring key: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a key set with a 3s TTL is still readable after 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling, not synchronisation
	}
	wantValue(t, db, long, "l")
	wantValue(t, db, made, "M")
	for _, keysOnly := range []bool{false, true} {
		got := scanKeys(t, db, []byte("kvtest/"), kv.ScanOptions{KeysOnly: keysOnly})
		wantKeys(t, fmt.Sprintf("scan after expiry (KeysOnly %v)", keysOnly), got, "kvtest/long", "kvtest/made-permanent")
	}
}

func testCancelledContext(t *testing.T, db kv.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := []byte("kvtest/cancelled")
	err := db.Update(ctx, func(tx kv.Tx) error { return tx.Set(key, []byte("x")) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled ctx: err = %v, want context.Canceled", err)
	}
	wantAbsent(t, db, key)
	called := false
	err = db.View(ctx, func(tx kv.Tx) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled ctx: err = %v, want context.Canceled (fn called: %v)", err, called)
	}
}

// mustUpdate runs fn in an Update and fails the test on an error.
func mustUpdate(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustSet(t *testing.T, db kv.DB, key, value []byte) {
	t.Helper()
	if err := kv.Set(context.Background(), db, key, value); err != nil {
		t.Fatalf("Set %q: %v", key, err)
	}
}

func wantValue(t *testing.T, db kv.DB, key []byte, want string) {
	t.Helper()
	got, err := kv.Get(context.Background(), db, key)
	if err != nil {
		t.Fatalf("Get %q: %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get %q = %q, want %q", key, got, want)
	}
}

func wantAbsent(t *testing.T, db kv.DB, key []byte) {
	t.Helper()
	got, err := kv.Get(context.Background(), db, key)
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get %q = %q, %v; want ErrNotFound", key, got, err)
	}
}

// scanKeys returns the keys a View's Scan passes to its callback.
func scanKeys(t *testing.T, db kv.DB, prefix []byte, opt kv.ScanOptions) []string {
	t.Helper()
	var keys []string
	err := db.View(context.Background(), func(tx kv.Tx) error {
		keys = keys[:0]
		return tx.Scan(prefix, opt, func(k, v []byte) error {
			if opt.KeysOnly && v != nil {
				return fmt.Errorf("KeysOnly scan passed value %q for %q", v, k)
			}
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("Scan %q %+v: %v", prefix, opt, err)
	}
	return keys
}

func wantKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	if len(got) <= 20 && len(want) <= 20 {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d keys, want %d; they first differ at index %d: %q, want %q",
		what, len(got), len(want), i, at(got, i), at(want, i))
}

// at returns s[i], or "(none)" past its end.
func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}
