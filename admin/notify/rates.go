package notify

import (
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
)

// Live rates are counted per minute for the last hour (alert windows) and
// per hour for the last eight days (baselines), in memory: a fixed number
// of buckets, each with one counter per rule that matched in it.
const (
	minuteBuckets = 60
	hourBuckets   = 8 * 24
	// MaxAlertWindow is the longest alert window.
	MaxAlertWindow = time.Hour
)

// counts are decisions in a bucket.
type counts struct {
	start    int64 // bucket start, Unix seconds; 0 is empty
	total    int
	outcomes [3]int // allow, challenge, deny
	degraded int
	hits     map[string]int // rule id -> matched (active or shadow)
}

func (c *counts) reset(start int64) {
	c.start, c.total, c.outcomes, c.degraded = start, 0, [3]int{}, 0
	clear(c.hits)
}

func (c *counts) add(rec *engine.Record) {
	c.total++
	switch rec.Outcome {
	case engine.Allow:
		c.outcomes[0]++
	case engine.Challenge:
		c.outcomes[1]++
	case engine.Deny:
		c.outcomes[2]++
	}
	if rec.Degraded {
		c.degraded++
	}
	for i := range rec.Rules {
		if r := &rec.Rules[i]; r.Matched && r.Error == "" {
			if c.hits == nil {
				c.hits = map[string]int{}
			}
			c.hits[r.ID]++
		}
	}
}

func (c *counts) merge(o *counts) {
	c.total += o.total
	c.degraded += o.degraded
	for i := range c.outcomes {
		c.outcomes[i] += o.outcomes[i]
	}
	for id, n := range o.hits {
		if c.hits == nil {
			c.hits = map[string]int{}
		}
		c.hits[id] += n
	}
}

// rates counts decisions by time. It is safe for concurrent use.
type rates struct {
	mu      sync.Mutex
	minutes [minuteBuckets]counts
	hours   [hourBuckets]counts
}

// observe counts rec at its evaluation time.
func (r *rates) observe(rec *engine.Record) {
	t := rec.EvaluatedAt.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	add := func(b *counts, start int64) {
		if b.start > start {
			return // older than the buckets kept
		}
		if b.start != start {
			b.reset(start)
		}
		b.add(rec)
	}
	m := t - t%60
	add(&r.minutes[(m/60)%minuteBuckets], m)
	h := t - t%3600
	add(&r.hours[(h/3600)%hourBuckets], h)
}

// window sums the minutes of [now-d, now]: whole minutes, the current one
// included.
func (r *rates) window(now time.Time, d time.Duration) counts {
	end := now.Unix()
	from := end - int64(d/time.Second)
	var out counts
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.minutes {
		b := &r.minutes[i]
		if b.start != 0 && b.start+60 > from && b.start <= end {
			out.merge(b)
		}
	}
	return out
}

// baseline sums the same hour of day over the seven days before now, and
// says how many of those hours had any decision.
func (r *rates) baseline(now time.Time) (counts, int) {
	h := now.Unix() - now.Unix()%3600
	var (
		out  counts
		days int
	)
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := int64(1); d <= 7; d++ {
		start := h - d*86400
		b := &r.hours[(start/3600)%hourBuckets]
		if b.start == start && b.total > 0 {
			out.merge(b)
			days++
		}
	}
	return out, days
}
