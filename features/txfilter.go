package features

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// txFilter is a Bloom filter over the ids of the decision records in
// Badger. The idempotency check of every new decision reads its
// transaction's record (Store.getByTx), and for a transaction never seen,
// which is nearly every one, that read is a Badger miss: every memtable and
// level-0 table searched, on the committer's serial path. The filter
// answers most of those from memory.
//
// The filter has no false negatives. The committer adds a decision's id
// before writing it, into the active filter and into the one being built,
// if any. The builder starts under mu, which the committer holds while it
// adds and writes a batch, so every batch either adds to the new filter or
// is committed before the builder's scan takes its snapshot.
//
// Until the first filter is built (in the background after Open) every
// check reads Badger. A filter past its designed key count is rebuilt
// twice the size, in the background, the old one answering meanwhile.
type txFilter struct {
	active   atomic.Pointer[storedFilter]
	building atomic.Bool
	mu       sync.Mutex
	next     *storedFilter // the filter being built; guarded by mu
	minKeys  int           // the fewest keys a filter is sized for
}

// mayContain reports whether a record with this id may be stored; false is
// certain.
func (f *txFilter) mayContain(id string) bool {
	a := f.active.Load()
	return a == nil || a.mayContain([]byte(id))
}

// add records id as stored. The caller holds mu.
func (f *txFilter) add(id string) {
	if a := f.active.Load(); a != nil {
		a.add([]byte(id))
	}
	if f.next != nil {
		f.next.add([]byte(id))
	}
}

// buildTxFilter builds a filter of every stored decision id, sized for at
// least keys keys and twice what is stored, and makes it the active one.
// It runs in the background (s.wg) and gives up when the store closes.
func (s *Store) buildTxFilter(keys int) {
	defer s.wg.Done()
	defer s.txf.building.Store(false)
	f, err := s.sizeFilter(prefixDecision, max(keys, s.txf.minKeys), s.closing)
	if err != nil {
		s.logFilterError(err)
		return
	}
	s.txf.mu.Lock()
	s.txf.next = f
	s.txf.mu.Unlock()
	err = s.scanKeys(prefixDecision, s.closing, f.add)
	s.txf.mu.Lock()
	s.txf.next = nil
	if err == nil {
		s.txf.active.Store(f)
	}
	s.txf.mu.Unlock()
	if err != nil {
		s.logFilterError(err)
	}
}

// startTxFilter starts building a filter unless one is being built.
func (s *Store) startTxFilter(keys int) {
	if s.txf.building.CompareAndSwap(false, true) {
		s.wg.Add(1)
		go s.buildTxFilter(keys)
	}
}

func (s *Store) logFilterError(err error) {
	if err != errClosing {
		s.opts.Log.Error("build transaction filter", "err", fmt.Errorf("read decision ids: %w", err))
	}
}

// errClosing stops a background scan when the store closes.
var errClosing = fmt.Errorf("store is closing")
