package features

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/riskengine/risk/engine"
)

const shardCount = 64

// windows is the in-memory home of feature windows, by entity (entity.go):
// a sharded LRU in front of Badger. One mutex per shard guards the shard's
// LRU, its dirty set and every entity in it, so an update of an entity is
// atomic with its load and its eviction; 64 shards keep two cores from
// queuing on one lock.
//
// An entity changed since the last flush sits in its shard's dirty set
// until the flusher has written it, even if the LRU evicts it, so reads
// never see Badger's older copy.
type windows struct {
	seed   maphash.Seed
	shards [shardCount]shard
	load   func(key []byte) (*entity, error)

	inflight singleflight.Group // Badger reads of missed keys

	hits, misses atomic.Uint64
	corrupt      atomic.Uint64 // reads of entities that did not decode
}

type shard struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, *entity]
	dirty    map[string]*entity
	flushing map[string]*entity
	// urgent holds the dirty entities a label changed: the decision log
	// cannot replay a label's effect, so they are written at the next tick
	// rather than the next full flush (Store.flushUrgent).
	urgent map[string]*entity
	// gen counts the entities cached after a Badger read (see with).
	gen uint64
}

func newWindows(capacity int, load func(key []byte) (*entity, error)) *windows {
	per := max(capacity/shardCount, 16)
	w := &windows{seed: maphash.MakeSeed(), load: load}
	for i := range w.shards {
		w.shards[i].lru, _ = simplelru.NewLRU[string, *entity](per, nil) // size > 0: cannot fail
		w.shards[i].dirty = make(map[string]*entity)
		w.shards[i].urgent = make(map[string]*entity)
	}
	return w
}

// markUrgent marks the entity of key, if it is dirty, to be written at the
// next tick.
func (ws *windows) markUrgent(key []byte) {
	s := ws.shardOf(key)
	s.mu.Lock()
	if e, ok := s.dirty[string(key)]; ok {
		s.urgent[e.key] = e
	}
	s.mu.Unlock()
}

// eachUrgent calls fn with every urgent entity, under its shard's lock, and
// clears the urgent sets. The entities stay dirty, for the next full flush.
func (ws *windows) eachUrgent(fn func(key string, e *entity)) {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		for k, e := range s.urgent {
			fn(k, e)
		}
		clear(s.urgent)
		s.mu.Unlock()
	}
}

// reurge marks keys urgent again after a failed write.
func (ws *windows) reurge(keys []string) {
	for _, k := range keys {
		ws.markUrgent([]byte(k))
	}
}

func (ws *windows) shardOf(key []byte) *shard {
	return &ws.shards[maphash.Bytes(ws.seed, key)%shardCount]
}

// with runs fn on the entity of key under its shard's lock, loading it from
// Badger on a miss. When fn returns true the entity is marked dirty. An
// entity absent everywhere is passed as a new empty entity. An entity
// stored but not decodable is an error wrapping engine.ErrCorrupt: it is
// never replaced by an empty one, which would zero its history.
//
// The Badger read of a miss happens outside the shard's lock, so a slow
// disk holds up only the payments of that entity, not the 1/64 of all
// entities that share its shard; concurrent misses of one key share one
// read (singleflight). The shard's gen says whether an entity was cached
// while the read ran: if one was, the read may be older than the cached
// state, so it is only used when the key is still absent and nothing was
// cached meanwhile, and otherwise read again.
func (ws *windows) with(key []byte, fn func(e *entity) bool) error {
	s := ws.shardOf(key)
	s.mu.Lock()
	e, ok := s.lru.Get(string(key))
	if ok {
		ws.hits.Add(1)
	} else {
		ws.misses.Add(1)
		for {
			if e, ok = s.cached(key); ok {
				break
			}
			gen := s.gen
			s.mu.Unlock()
			loaded, err := ws.loadShared(key)
			s.mu.Lock()
			if err != nil {
				s.mu.Unlock()
				return err
			}
			if e, ok = s.cached(key); ok {
				break
			}
			if s.gen == gen {
				e = loaded
				s.lru.Add(e.key, e)
				s.gen++
				break
			}
		}
	}
	defer s.mu.Unlock()
	if fn(e) {
		s.dirty[e.key] = e // e.key: no new string per update
	}
	return nil
}

// cached finds the entity of key in the shard's LRU, dirty or flushing set,
// adding it back to the LRU when it was only in a set. The caller holds
// s.mu.
func (s *shard) cached(key []byte) (*entity, bool) {
	if e, ok := s.lru.Get(string(key)); ok {
		return e, true
	}
	e, ok := s.dirty[string(key)]
	if !ok {
		e, ok = s.flushing[string(key)]
	}
	if ok {
		s.lru.Add(e.key, e)
	}
	return e, ok
}

// loadShared reads the entity of key from Badger, once for all concurrent
// callers. They share the entity read; with caches it at most once (the
// first caller bumps gen, the others then find it cached or read again).
func (ws *windows) loadShared(key []byte) (*entity, error) {
	v, err, _ := ws.inflight.Do(string(key), func() (any, error) {
		e, err := ws.load(key)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			e = &entity{}
		case errors.Is(err, engine.ErrCorrupt):
			ws.corrupt.Add(1)
			return nil, err
		case err != nil:
			return nil, err
		}
		e.key = string(key)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entity), nil
}

// swapDirty moves every shard's dirty set to its flushing set. It is
// cheap (a map swap per shard), so the caller may hold the committer's
// lock while it runs; encoding happens later in eachFlushingShard.
func (ws *windows) swapDirty() {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		if len(s.dirty) > 0 {
			s.flushing = s.dirty
			s.dirty = make(map[string]*entity, len(s.flushing))
		}
		clear(s.urgent) // the full flush writes them
		s.mu.Unlock()
	}
}

// eachFlushingShard calls fn with every entity of a shard's flushing set,
// under the shard's lock so fn sees a consistent entity, then after outside
// it, shard after shard; it stops at the first error of after. An entity
// may have changed since swapDirty; the seq of each window says which
// decisions it holds.
func (ws *windows) eachFlushingShard(fn func(key string, e *entity), after func() error) error {
	for i := range ws.shards {
		s := &ws.shards[i]
		s.mu.Lock()
		for k, e := range s.flushing {
			fn(k, e)
		}
		s.mu.Unlock()
		if err := after(); err != nil {
			return err
		}
	}
	return nil
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

// len returns the number of cached entities.
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
