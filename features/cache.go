package features

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const shardCount = 64

// windows is the in-memory home of feature windows: a sharded LRU in front
// of Badger. One mutex per shard guards the shard's LRU, its dirty set and
// every window in it, so an update of a window is atomic with its load and
// its eviction; 64 shards keep two cores from queuing on one lock.
//
// A window changed since the last flush sits in its shard's dirty set until
// the flusher has written it, even if the LRU evicts it, so reads never see
// Badger's older copy.
type windows struct {
	seed   maphash.Seed
	shards [shardCount]shard
	load   func(key []byte) ([]byte, error)

	hits, misses atomic.Uint64
}

type shard struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, *window]
	dirty    map[string]*window
	flushing map[string]*window
}

func newWindows(capacity int, load func(key []byte) ([]byte, error)) *windows {
	per := max(capacity/shardCount, 16)
	w := &windows{seed: maphash.MakeSeed(), load: load}
	for i := range w.shards {
		w.shards[i].lru, _ = simplelru.NewLRU[string, *window](per, nil) // size > 0: cannot fail
		w.shards[i].dirty = make(map[string]*window)
	}
	return w
}

func (ws *windows) shardOf(key []byte) *shard {
	return &ws.shards[maphash.Bytes(ws.seed, key)%shardCount]
}

// with runs fn on the window of key under its shard's lock, loading it from
// Badger on a miss. When fn returns true the window is marked dirty. A
// window absent everywhere is passed as a new empty window.
func (ws *windows) with(key []byte, fn func(w *window) bool) error {
	s := ws.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.lru.Get(string(key))
	if ok {
		ws.hits.Add(1)
	} else {
		ws.misses.Add(1)
		if w, ok = s.dirty[string(key)]; !ok {
			w, ok = s.flushing[string(key)]
		}
		if !ok {
			data, err := ws.load(key)
			switch {
			case errors.Is(err, badger.ErrKeyNotFound):
				w = &window{}
			case err != nil:
				return err
			default:
				if w, err = decodeWindow(data); err != nil {
					w = &window{} // a corrupt window restarts empty rather than failing every payment
				}
			}
			w.key = string(key)
		}
		s.lru.Add(w.key, w)
	}
	if fn(w) {
		s.dirty[w.key] = w // w.key: no new string per update
	}
	return nil
}

// swapDirty moves every shard's dirty set to its flushing set. It is
// cheap (a map swap per shard), so the caller may hold the committer's
// lock while it runs; encoding happens later in eachFlushing.
func (ws *windows) swapDirty() {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		if len(s.dirty) > 0 {
			s.flushing = s.dirty
			s.dirty = make(map[string]*window, len(s.flushing))
		}
		s.mu.Unlock()
	}
}

// eachFlushing calls fn with every window of the flushing sets, under its
// shard's lock so fn sees a consistent window. A window may have changed
// since swapDirty; its seq says which decisions it holds.
func (ws *windows) eachFlushing(fn func(key string, w *window)) {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		for k, w := range s.flushing {
			fn(k, w)
		}
		s.mu.Unlock()
	}
}

// flushed ends a flush: on success the flushing sets are dropped; on
// failure they are merged back into the dirty sets for the next attempt.
func (ws *windows) flushed(ok bool) {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		if !ok {
			for k, w := range s.flushing {
				if _, newer := s.dirty[k]; !newer {
					s.dirty[k] = w
				}
			}
		}
		s.flushing = nil
		s.mu.Unlock()
	}
}

// len returns the number of cached windows.
func (ws *windows) len() int {
	n := 0
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
