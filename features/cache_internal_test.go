package features

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// sameShard returns n keys that fall in one shard of ws.
func sameShard(ws *windows, n int) [][]byte {
	var keys [][]byte
	want := ws.shardOf([]byte("k0"))
	for i := 0; len(keys) < n; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if ws.shardOf(k) == want {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestWindowMissReadsOutsideTheLock: while the Badger read of one entity is
// stuck, another entity of the same shard is still served, and concurrent
// misses of the stuck entity share one read. Before the fix the read ran
// under the shard's mutex and the second entity waited for it.
func TestWindowMissReadsOutsideTheLock(t *testing.T) {
	release := make(chan struct{})
	var loading, maxLoading, loads atomic.Int32
	var ws *windows
	var slow []byte
	ws = newWindows(1024, func(key []byte) (*entity, error) {
		if string(key) != string(slow) {
			return nil, badger.ErrKeyNotFound
		}
		loads.Add(1)
		n := loading.Add(1)
		for m := maxLoading.Load(); n > m && !maxLoading.CompareAndSwap(m, n); m = maxLoading.Load() {
		}
		<-release
		loading.Add(-1)
		return &entity{}, nil
	})
	keys := sameShard(ws, 2)
	slow = keys[0]
	var wg sync.WaitGroup
	const readers = 5
	for range readers {
		wg.Go(func() {
			if err := ws.with(slow, func(*entity) bool { return false }); err != nil {
				t.Error(err)
			}
		})
	}
	// All readers have missed and gone to the read.
	for deadline := time.Now().Add(10 * time.Second); ws.misses.Load() < readers; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d readers missed", ws.misses.Load(), readers)
		}
		<-time.After(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- ws.with(keys[1], func(e *entity) bool { return true }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
		close(release)
	case <-time.After(10 * time.Second):
		t.Error("an entity of the same shard waited for another entity's Badger read")
		close(release)
		<-done
	}
	wg.Wait()
	if m := maxLoading.Load(); m != 1 {
		t.Errorf("%d reads of one key ran at once, want 1", m)
	}
	if n := loads.Load(); n < 1 || n > readers {
		t.Errorf("%d reads", n)
	}
	if ws.len() != 2 {
		t.Errorf("%d entities cached, want 2", ws.len())
	}
}

// TestWindowMissKeepsNewerState: a read that ran while the entity was
// cached and changed by another caller does not replace it.
func TestWindowMissKeepsNewerState(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var ws *windows
	ws = newWindows(1024, func(key []byte) (*entity, error) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(started)
			<-release
		}
		return nil, badger.ErrKeyNotFound
	})
	key := []byte("card\x00fp_1")
	var stale *entity
	done := make(chan error, 1)
	go func() {
		done <- ws.with(key, func(e *entity) bool { stale = e; return false })
	}()
	<-started
	// Meanwhile a second read of the same key joins the flight; after it
	// returns a third caller changes the cached entity.
	release2 := make(chan error, 1)
	go func() { release2 <- ws.with(key, func(e *entity) bool { e.key = e.key + ""; return true }) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-release2; err != nil {
		t.Fatal(err)
	}
	var got *entity
	if err := ws.with(key, func(e *entity) bool { got = e; return false }); err != nil {
		t.Fatal(err)
	}
	if got != stale {
		t.Errorf("two entities served for one key: a read replaced the cached one")
	}
}

// TestCorruptEntityIsNotReset: an entity whose stored state does not decode
// is an error wrapping engine.ErrCorrupt, counted, and not replaced by an
// empty entity in the cache. Before the fix it read as empty, silently.
func TestCorruptEntityIsNotReset(t *testing.T) {
	ws := newWindows(64, func([]byte) (*entity, error) {
		return nil, fmt.Errorf("decode: %w", errCorrupt)
	})
	for range 2 {
		called := false
		err := ws.with([]byte("card\x00fp_1"), func(*entity) bool { called = true; return true })
		if !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("err = %v, want engine.ErrCorrupt", err)
		}
		if called {
			t.Fatal("fn ran on a stand-in for a corrupt entity")
		}
	}
	if n := ws.corrupt.Load(); n != 2 {
		t.Errorf("corrupt = %d, want 2", n)
	}
	if ws.len() != 0 {
		t.Errorf("%d entities cached", ws.len())
	}
}
