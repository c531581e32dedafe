package loadgen

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressEvery is how often tick prints a progress line.
const progressEvery = time.Second

// stats accumulates results. Workers add to it directly rather than
// through a channel to a collecting goroutine, which would be one more
// goroutine to wake per request. add and progress are safe for concurrent
// use; report must not run concurrently with either.
type stats struct {
	mu        sync.Mutex
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

func newStats(sent *atomic.Int64) *stats {
	return &stats{sent: sent}
}

// tick prints a progress line to out every second after start until done
// is closed.
func (s *stats) tick(out io.Writer, start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	last := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			s.progress(out, now.Sub(start), now.Sub(last))
			last = now
		}
	}
}

func (s *stats) add(r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
func (s *stats) progress(out io.Writer, elapsed, since time.Duration) {
	s.mu.Lock()
	completed, errors, p99 := s.completed, s.errors, s.recent.Quantile(0.99)
	rate := float64(completed-s.lastDone) / since.Seconds()
	s.lastDone = completed
	s.recent.Reset()
	s.mu.Unlock()
	// Print unlocked: a slow out must not hold up the workers.
	fmt.Fprintf(out, "%6.1fs  sent %d  completed %d  rate %.0f/s  errors %d  p99 %s\n",
		elapsed.Seconds(), s.sent.Load(), completed, rate, errors, formatMs(p99))
}
