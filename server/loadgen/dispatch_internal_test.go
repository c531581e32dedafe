package loadgen

import (
	"context"
	"sync"
	"testing"
)

// The dispatcher hands each job to the worker that became idle last, and
// to another worker only while that one is busy: what keeps a light load
// on few connections, whatever the number of workers. Each step waits on
// the dispatcher's own signal that a worker is idle, so the order is exact.
func TestDispatcherPrefersLatestIdle(t *testing.T) {
	d := newDispatcher()
	got := make(chan int) // a worker's number, sent while it holds its job
	var wg sync.WaitGroup
	defer wg.Wait()
	defer d.close()
	for i := range 3 {
		in := d.inbox()
		wg.Go(func() {
			for {
				if _, ok := d.next(in); !ok {
					return
				}
				got <- i
			}
		})
		<-d.freed // worker i is idle: idle in the order 0, 1, 2
	}
	send := func() {
		t.Helper()
		if !d.send(context.Background(), job{}) {
			t.Fatal("send found no worker")
		}
	}

	for range 2 {
		send()
		if w := <-got; w != 2 {
			t.Fatalf("job went to worker %d, want 2, the latest idle", w)
		}
		<-d.freed // worker 2 is idle again, the latest once more
	}

	// Worker 2 holds its job (nobody receives from got yet), so the next
	// job goes to worker 1, the latest of those still idle.
	send()
	send()
	a, b := <-got, <-got
	if min(a, b) != 1 || max(a, b) != 2 {
		t.Errorf("two jobs at once went to workers %d and %d, want 2 and 1", a, b)
	}
}
