package features

import (
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
)

// Sizing of the stored-entity filter.
const (
	// minFilterKeys is the fewest keys a filter is sized for: 10 MiB.
	minFilterKeys = 8 << 20
	// filterFalsePositives is the designed false-positive rate at the
	// designed key count: about 10 bits and 7 hashes a key.
	filterFalsePositives = 0.01
)

// storedFilter is a Bloom filter over the keys of every entity written to
// Badger (entity.go), or of every decision id (txfilter.go). A payment from
// an entity never seen before would otherwise cost one Badger miss per
// entity (every memtable and level-0 table searched); the filter answers
// "never stored" from memory instead.
//
// It has no false negatives: a key is added before the write that stores
// it, so an entity Badger holds is always reported as maybe stored. Deleted
// keys stay in the filter and only cost a Badger read. Past its designed
// key count the false-positive rate rises and the owner rebuilds it larger
// (see Store.flush).
//
// The filter is github.com/bits-and-blooms/bloom/v3, which is not safe for
// concurrent use, under an RWMutex. BenchmarkFilter (go test ./features
// -run '^$' -bench Filter -cpu 1,2 -count 3) measured 200-310 ns/op
// against 80-115 ns/op for the lock-free hand-written filter it replaced:
// one check a decision (the idempotency lookup) plus one per entity missing
// from the window cache, so at most a few µs of the ~275 µs of CPU a
// decision costs (docs/performance.md). BenchmarkDecideParallel (go test
// ./server -run '^$' -bench DecideParallel -benchtime 20000x -count 3) gave
// 77-113 µs/op before and 74-92 after: no difference beyond the noise.
// Its hashing is unseeded murmur3; keys crafted to collide only cost the
// Badger read the filter would have saved.
//
// No filter state is stored: each is rebuilt from a key scan at Open, so
// there is no stored format to version or keep readable.
//
// Reads and adds are safe for concurrent use.
type storedFilter struct {
	mu    sync.RWMutex
	f     *bloom.BloomFilter // guarded by mu
	keys  int                // designed key count
	added atomic.Int64
}

// newStoredFilter returns an empty filter sized for keys keys (at least
// 64).
func newStoredFilter(keys int) *storedFilter {
	keys = max(keys, 64)
	return &storedFilter{f: bloom.NewWithEstimates(uint(keys), filterFalsePositives), keys: keys}
}

// add records key as stored.
func (f *storedFilter) add(key []byte) {
	f.mu.Lock()
	f.f.Add(key)
	f.mu.Unlock()
	f.added.Add(1)
}

// mayContain reports whether key may have been stored; false is certain.
func (f *storedFilter) mayContain(key []byte) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.f.Test(key)
}

// full reports whether more keys were added than the filter was sized for.
func (f *storedFilter) full() bool { return f.added.Load() > int64(f.keys) }
