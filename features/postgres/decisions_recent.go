package postgres

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/riskengine/risk/engine"
)

// recentRecords keeps the newest decoded decision documents, by sequence
// number, for ScanRecords. A cluster's leader runs two readers that tail
// the decision log (the review queue and the webhook outbox), and each
// decoded every document: 0.3 ms of JSON per decision and reader
// (BenchmarkDecodeRecord), most of the leader's CPU under load. The
// second reader now finds what the first decoded.
//
// Only the document is kept: it never changes once committed. Labels are
// a column of their own that AddLabel changes, so they are decoded on
// every read. A record is kept only within the newest recentWindow
// sequence numbers seen, so a backtest reading old history does not push
// out what the tail readers are about to read.
type recentRecords struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[uint64, *engine.Record]
	head uint64 // the highest sequence number seen
	hits uint64
}

// recentWindow bounds the records kept, and how far behind the newest one
// a record may be to be kept: about 15 MB of decoded records with 50 rule
// results each.
const recentWindow = 1024

func newRecentRecords() *recentRecords {
	l, _ := simplelru.NewLRU[uint64, *engine.Record](recentWindow, nil) // size > 0: cannot fail
	return &recentRecords{lru: l}
}

// get returns a copy of the record of seq with labels, if it is kept. The
// copy's fields may be set freely; the slices and maps it shares with the
// kept record are read-only, as on any record a reader is handed.
func (r *recentRecords) get(seq uint64, labels []engine.Label) (*engine.Record, bool) {
	r.mu.Lock()
	rec, ok := r.lru.Get(seq)
	if ok {
		r.hits++
	}
	r.mu.Unlock()
	if !ok {
		return nil, false
	}
	cp := *rec
	cp.Labels = labels
	return &cp, true
}

// add keeps a copy of rec, decoded from its document (labels are not
// kept), unless it is older than the window.
func (r *recentRecords) add(rec *engine.Record) {
	cp := *rec
	cp.Labels = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.head = max(r.head, cp.Seq)
	if cp.Seq+recentWindow < r.head {
		return
	}
	r.lru.Add(cp.Seq, &cp)
}
