package features

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// Sizing of the stored-entity filter.
const (
	// minFilterKeys is the fewest keys a filter is sized for: 10 MiB.
	minFilterKeys = 8 << 20
	// filterBitsPerKey and filterHashes give about a 1% false-positive
	// rate at the designed key count.
	filterBitsPerKey = 10
	filterHashes     = 7
)

// storedFilter is a Bloom filter over the keys of every entity written to
// Badger (entity.go). A payment from an entity never seen before would
// otherwise cost one Badger miss per entity (every memtable and level-0
// table searched); the filter answers "never stored" from memory instead.
//
// It has no false negatives: a key is added before the write that stores
// it, so an entity Badger holds is always reported as maybe stored. Deleted
// keys stay in the filter and only cost a Badger read. Past its designed
// key count the false-positive rate rises and the owner rebuilds it larger
// (see Store.flush).
//
// Reads and adds are safe for concurrent use.
type storedFilter struct {
	seed  maphash.Seed
	words []atomic.Uint64
	mask  uint64 // number of bits - 1; the size is a power of two
	keys  int    // designed key count
	added atomic.Int64
}

// newStoredFilter returns an empty filter sized for keys keys (at least
// 64).
func newStoredFilter(keys int) *storedFilter {
	keys = max(keys, 64/filterBitsPerKey+1)
	nbits := uint64(1) << bits.Len64(uint64(keys*filterBitsPerKey)-1)
	return &storedFilter{
		seed:  maphash.MakeSeed(),
		words: make([]atomic.Uint64, nbits/64),
		mask:  nbits - 1,
		keys:  keys,
	}
}

// add records key as stored.
func (f *storedFilter) add(key []byte) {
	h := maphash.Bytes(f.seed, key)
	a, b := h, h>>32|h<<32|1 // double hashing; b odd so probes differ
	for range filterHashes {
		bit := a & f.mask
		f.words[bit/64].Or(1 << (bit % 64))
		a += b
	}
	f.added.Add(1)
}

// mayContain reports whether key may have been stored; false is certain.
func (f *storedFilter) mayContain(key []byte) bool {
	h := maphash.Bytes(f.seed, key)
	a, b := h, h>>32|h<<32|1
	for range filterHashes {
		bit := a & f.mask
		if f.words[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
		a += b
	}
	return true
}

// full reports whether more keys were added than the filter was sized for.
func (f *storedFilter) full() bool { return f.added.Load() > int64(f.keys) }
