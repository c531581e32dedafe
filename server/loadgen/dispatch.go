package loadgen

import (
	"context"
	"sync"
)

// dispatcher hands each job to the worker that became idle most recently.
// A shared channel would hand it to the one idle longest, spreading even a
// light load over every worker and so over every connection: each would be
// dialled during the run, sit cold in the caches and have its ACKs delayed.
// Last in, first out keeps only as many workers and connections busy as the
// load needs, as net/http's idle connection pool does.
//
// One goroutine sends; each worker receives through its own inbox. The
// methods are safe for concurrent use.
type dispatcher struct {
	mu      sync.Mutex
	idle    []chan job    // inboxes of idle workers, the latest last
	freed   chan struct{} // a worker became idle; capacity 1
	inboxes []chan job    // every worker's, for close
}

func newDispatcher() *dispatcher {
	return &dispatcher{freed: make(chan struct{}, 1)}
}

// inbox registers a worker and returns the channel it receives on through
// next.
func (d *dispatcher) inbox() chan job {
	in := make(chan job, 1)
	d.mu.Lock()
	d.inboxes = append(d.inboxes, in)
	d.mu.Unlock()
	return in
}

// next marks the worker owning in idle and waits for its next job. It
// returns false once the dispatcher is closed.
func (d *dispatcher) next(in chan job) (job, bool) {
	d.mu.Lock()
	d.idle = append(d.idle, in)
	d.mu.Unlock()
	select {
	case d.freed <- struct{}{}:
	default:
	}
	j, ok := <-in
	return j, ok
}

// send hands j to the most recently idle worker, waiting for one to become
// idle. It returns false, without sending, when ctx is done before a worker
// is idle.
func (d *dispatcher) send(ctx context.Context, j job) bool {
	for {
		d.mu.Lock()
		if n := len(d.idle); n > 0 {
			in := d.idle[n-1]
			d.idle = d.idle[:n-1]
			d.mu.Unlock()
			in <- j // never blocks: an idle worker's inbox is empty
			return true
		}
		d.mu.Unlock()
		select {
		case <-d.freed:
		case <-ctx.Done():
			return false
		}
	}
}

// close ends every worker's next once it has finished its job. No send may
// follow.
func (d *dispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, in := range d.inboxes {
		close(in)
	}
}
