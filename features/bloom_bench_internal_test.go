package features

import (
	"hash/maphash"
	"math/bits"
	"strconv"
	"sync/atomic"
	"testing"
)

// atomicFilter is the hand-written lock-free Bloom filter storedFilter
// replaced, kept here as the baseline of BenchmarkFilter: 10 bits and 7
// probes a key over atomic words, maphash double hashing.
type atomicFilter struct {
	seed  maphash.Seed
	words []atomic.Uint64
	mask  uint64
}

func newAtomicFilter(keys int) *atomicFilter {
	nbits := uint64(1) << bits.Len64(uint64(keys*10)-1)
	return &atomicFilter{seed: maphash.MakeSeed(), words: make([]atomic.Uint64, nbits/64), mask: nbits - 1}
}

func (f *atomicFilter) add(key []byte) {
	h := maphash.Bytes(f.seed, key)
	a, b := h, h>>32|h<<32|1
	for range 7 {
		bit := a & f.mask
		f.words[bit/64].Or(1 << (bit % 64))
		a += b
	}
}

func (f *atomicFilter) mayContain(key []byte) bool {
	h := maphash.Bytes(f.seed, key)
	a, b := h, h>>32|h<<32|1
	for range 7 {
		bit := a & f.mask
		if f.words[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
		a += b
	}
	return true
}

// BenchmarkFilter compares storedFilter (bloom/v3 under an RWMutex) with
// the hand-written lock-free filter it replaced, both sized for minFilterKeys
// (10 MiB) and holding 1M entity keys, as the decision path uses them:
// every goroutine checks keys (half stored, half not) and every 8th
// operation adds one, as the committer does for new entities.
func BenchmarkFilter(b *testing.B) {
	const held = 1 << 20
	keys := make([][]byte, 2*held)
	for i := range keys {
		keys[i] = []byte("card_n\x00fp_" + strconv.Itoa(i))
	}
	for _, impl := range []struct {
		name       string
		add        func([]byte)
		mayContain func([]byte) bool
	}{
		func() (s struct {
			name       string
			add        func([]byte)
			mayContain func([]byte) bool
		}) {
			f := newAtomicFilter(minFilterKeys)
			s.name, s.add, s.mayContain = "atomic-handwritten", f.add, f.mayContain
			return
		}(),
		func() (s struct {
			name       string
			add        func([]byte)
			mayContain func([]byte) bool
		}) {
			f := newStoredFilter(minFilterKeys)
			s.name, s.add, s.mayContain = "bloom-v3", f.add, f.mayContain
			return
		}(),
	} {
		for _, k := range keys[:held] {
			impl.add(k)
		}
		b.Run(impl.name, func(b *testing.B) {
			var next atomic.Int64
			var missed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)) * 7919
				for pb.Next() {
					k := keys[i%len(keys)]
					if i%8 == 0 {
						impl.add(k)
					} else if !impl.mayContain(k) && i%len(keys) < held {
						missed.Add(1)
					}
					i++
				}
			})
			if n := missed.Load(); n != 0 {
				b.Errorf("%d stored keys reported absent", n)
			}
		})
	}
}
