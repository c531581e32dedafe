package kvtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/features/kv"
)

func testUpdateAtomic(t *testing.T, db kv.DB) {
	mustSet(t, db, []byte("kvtest/at/kept"), []byte("old"))
	mustSet(t, db, []byte("kvtest/at/gone"), []byte("old"))
	err := db.Update(context.Background(), func(tx kv.Tx) error {
		for _, op := range []func() error{
			func() error { return tx.Set([]byte("kvtest/at/new"), []byte("new")) },
			func() error { return tx.Set([]byte("kvtest/at/kept"), []byte("new")) },
			func() error { return tx.Delete([]byte("kvtest/at/gone")) },
		} {
			if err := op(); err != nil {
				return err
			}
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update whose fn fails: err = %v, want errBoom", err)
	}
	wantAbsent(t, db, []byte("kvtest/at/new"))
	wantValue(t, db, []byte("kvtest/at/kept"), "old")
	wantValue(t, db, []byte("kvtest/at/gone"), "old")
}

func testReadYourWrites(t *testing.T, db kv.DB) {
	setAll(t, db, "kvtest/ry/a", "kvtest/ry/c")
	mustUpdate(t, db, func(tx kv.Tx) error {
		if err := tx.Set([]byte("kvtest/ry/b"), []byte("b")); err != nil {
			return err
		}
		if err := tx.Set([]byte("kvtest/ry/c"), []byte("c2")); err != nil {
			return err
		}
		if err := tx.Delete([]byte("kvtest/ry/a")); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("kvtest/ry/b")); err != nil || string(v) != "b" {
			return fmt.Errorf("Get of a key set in this transaction = %q, %v; want \"b\"", v, err)
		}
		if v, err := tx.Get([]byte("kvtest/ry/c")); err != nil || string(v) != "c2" {
			return fmt.Errorf("Get of a key overwritten in this transaction = %q, %v; want \"c2\"", v, err)
		}
		if _, err := tx.Get([]byte("kvtest/ry/a")); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("Get of a key deleted in this transaction: err = %v, want ErrNotFound", err)
		}
		var got []string
		err := tx.Scan([]byte("kvtest/ry/"), kv.ScanOptions{}, func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		})
		if err != nil {
			return err
		}
		wantKeys(t, "scan inside the transaction", got, "kvtest/ry/b=b", "kvtest/ry/c=c2")
		return nil
	})
	wantAbsent(t, db, []byte("kvtest/ry/a"))
	wantValue(t, db, []byte("kvtest/ry/b"), "b")
	wantValue(t, db, []byte("kvtest/ry/c"), "c2")
}

func testViewIsolation(t *testing.T, db kv.DB) {
	key := []byte("kvtest/iso/k")
	written := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(context.Background(), func(tx kv.Tx) error {
			if err := tx.Set(key, []byte("v")); err != nil {
				return err
			}
			close(written)
			<-release
			return nil
		})
	}()
	select {
	case <-written:
	case err := <-done:
		t.Fatalf("Update ended before writing: %v", err)
	}
	var viewErr error
	err := db.View(context.Background(), func(tx kv.Tx) error {
		v, err := tx.Get(key)
		if !errors.Is(err, kv.ErrNotFound) {
			viewErr = fmt.Errorf("View saw an uncommitted write: Get = %q, %v; want ErrNotFound", v, err)
		}
		return tx.Scan([]byte("kvtest/iso/"), kv.ScanOptions{}, func(k, _ []byte) error {
			viewErr = fmt.Errorf("View's scan saw the uncommitted key %q", k)
			return nil
		})
	})
	close(release)
	if err != nil {
		t.Errorf("View: %v", err)
	}
	if viewErr != nil {
		t.Error(viewErr)
	}
	if err := <-done; err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantValue(t, db, key, "v")
}

// testConflicts runs read-modify-write increments of one counter from
// several goroutines, each retrying on ErrConflict. A lost update leaves
// the counter short of the total.
func testConflicts(t *testing.T, db kv.DB) {
	const workers, increments, maxAttempts = 8, 50, 10000
	key := []byte("kvtest/cnt/n")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range increments {
				if err := increment(db, key, maxAttempts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := kv.Get(context.Background(), db, key)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.BigEndian.Uint64(got); n != workers*increments {
		t.Errorf("counter = %d after %d×%d increments, want %d", n, workers, increments, workers*increments)
	}
}

func increment(db kv.DB, key []byte, maxAttempts int) error {
	for range maxAttempts {
		err := db.Update(context.Background(), func(tx kv.Tx) error {
			var n uint64
			v, err := tx.Get(key)
			switch {
			case errors.Is(err, kv.ErrNotFound):
			case err != nil:
				return err
			default:
				n = binary.BigEndian.Uint64(v)
			}
			return tx.Set(key, binary.BigEndian.AppendUint64(nil, n+1))
		})
		if !errors.Is(err, kv.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("increment: still conflicting after %d attempts", maxAttempts)
}

func testViewIsReadOnly(t *testing.T, db kv.DB) {
	key, kept := []byte("kvtest/ro/k"), []byte("kvtest/ro/kept")
	mustSet(t, db, kept, []byte("v"))
	for name, op := range map[string]func(kv.Tx) error{
		"Set":    func(tx kv.Tx) error { return tx.Set(key, []byte("v")) },
		"SetTTL": func(tx kv.Tx) error { return tx.SetTTL(key, []byte("v"), time.Hour) },
		"Delete": func(tx kv.Tx) error { return tx.Delete(kept) },
	} {
		if err := db.View(context.Background(), op); err == nil {
			t.Errorf("%s in a View succeeded", name)
		}
		wantAbsent(t, db, key)
		wantValue(t, db, kept, "v")
	}
}
