package loadgen

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// progressEvery is how often collect prints a progress line.
const progressEvery = time.Second

// stats accumulates results. One goroutine owns it: collect, then report.
type stats struct {
	start     time.Time
	sent      *atomic.Int64 // requests handed to workers, written by the scheduler
	all       Histogram     // latency of completed requests
	recent    Histogram     // the same since the last progress line
	completed int64
	errors    int64
	status    [600]int64 // by HTTP status code; out-of-range codes count at 0
	outcomes  [numOutcomes]int64
	failures  [numFailures]int64
	lastDone  int64 // completed at the last progress line
}

func newStats(start time.Time, sent *atomic.Int64) *stats {
	return &stats{start: start, sent: sent}
}

// collect records results until the channel is closed, printing a progress
// line to out every second.
func (s *stats) collect(results <-chan result, out io.Writer) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	last := s.start
	for {
		select {
		case r, ok := <-results:
			if !ok {
				return
			}
			s.add(r)
		case now := <-tick.C:
			s.progress(out, now, now.Sub(last))
			last = now
		}
	}
}

func (s *stats) add(r result) {
	if r.failure != failureNone {
		s.errors++
		s.failures[r.failure]++
		return
	}
	s.completed++
	code := r.status
	if code < 0 || code >= len(s.status) {
		code = 0
	}
	s.status[code]++
	if r.status < 200 || r.status >= 300 {
		s.errors++
	}
	s.outcomes[r.outcome]++
	s.all.Record(r.latency)
	s.recent.Record(r.latency)
}

// progress prints one line: elapsed, sent, completed, the completion rate
// and p99 since the last line, and errors so far.
func (s *stats) progress(out io.Writer, now time.Time, since time.Duration) {
	rate := float64(s.completed-s.lastDone) / since.Seconds()
	fmt.Fprintf(out, "%6.1fs  sent %d  completed %d  rate %.0f/s  errors %d  p99 %s\n",
		now.Sub(s.start).Seconds(), s.sent.Load(), s.completed, rate, s.errors, formatMs(s.recent.Quantile(0.99)))
	s.lastDone = s.completed
	s.recent.Reset()
}
