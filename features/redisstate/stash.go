package redisstate

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// stashEntries bounds the reads kept between a decision's Features and its
// Record: the decisions in flight on this node.
const stashEntries = 4096

// read is what Features read for one payment, kept for the decision's
// limits (Spent) and its Record, so neither reads Redis again: a decision
// then costs two round trips, the read and the compare-and-set. It is only
// a first guess for Record: a state another node changed meanwhile fails
// the compare-and-set and is read again.
type read struct {
	l     *live
	p     engine.Payment // the payment read, to match the later calls
	keys  []features.StateKey
	raws  [][]byte // each key's stored value as read; nil when absent
	built []bool   // by group
	// spent is the daily spend read; spentOK when the state held it.
	spent   float64
	spentOK bool
}

func newStash() *lru.Cache[string, *read] {
	c, _ := lru.New[string, *read](stashEntries) // size > 0: cannot fail
	return c
}

// stashed returns the read Features kept for p under the live calculator,
// if any.
func (s *Store) stashed(l *live, p *engine.Payment) (*read, bool) {
	if p.TransactionID == "" {
		return nil, false
	}
	r, ok := s.stash.Peek(p.TransactionID)
	if !ok || r.l != l || !samePayment(&r.p, p) {
		return nil, false
	}
	return r, true
}

// samePayment is whether a and b are the same decision's payment: what the
// stash is keyed by must not hand one payment's read to another.
func samePayment(a, b *engine.Payment) bool {
	return a.TransactionID == b.TransactionID && a.OccurredAt.Equal(b.OccurredAt) &&
		a.Amount == b.Amount && a.Currency == b.Currency
}

// raw returns the stashed value of key k, and whether it was read.
func (r *read) raw(k features.StateKey) ([]byte, bool) {
	for i, x := range r.keys {
		if x == k {
			return r.raws[i], true
		}
	}
	return nil, false
}

// reuse returns the stashed values of jobs' states, when r (possibly nil)
// holds every one of them and all their groups were built when read. A
// group read as not built is read again rather than trusted: it may have
// been built since, and a live write must then count into it.
func (r *read) reuse(jobs []*job) ([][]byte, bool) {
	if r == nil || len(jobs) == 0 || jobs[0].rebuild {
		return nil, false
	}
	raws := make([][]byte, len(jobs))
	for i, j := range jobs {
		v, ok := r.raw(j.key)
		if !ok || j.key.Group >= len(r.built) || !r.built[j.key.Group] {
			return nil, false
		}
		raws[i] = v
	}
	return raws, true
}
