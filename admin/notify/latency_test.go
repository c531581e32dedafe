package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin/notify"
	"github.com/riskengine/risk/engine"
)

// TestDeadReceiverDoesNotSlowDecisions decides payments that all raise
// events while the only receiver never answers, with the reader and the
// dispatcher running, and reports the decision latency beside the same
// run with no webhook. It asserts what must hold whatever the machine's
// speed: every decision answered, and never more than one delivery to the
// dead receiver in flight (a dead receiver holds one goroutine; its
// backlog waits on disk). The figures are logged, not asserted.
func TestDeadReceiverDoesNotSlowDecisions(t *testing.T) {
	const n = 1000
	run := func(withHook bool) (p50, p99 time.Duration, maxInFlight int64, events int) {
		var inFlight, peak atomic.Int64
		s := newStack(t, func(c *notify.Config) {
			c.Timeout = 200 * time.Millisecond
			c.Now = time.Now
		})
		if withHook {
			rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
				cur := inFlight.Add(1)
				for {
					p := peak.Load()
					if cur <= p || peak.CompareAndSwap(p, cur) {
						break
					}
				}
				<-r.Context().Done() // never answers
				inFlight.Add(-1)
			})
			s.hook(rc.URL, notify.EventDenied)
		}
		if err := s.n.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.n.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		lat := make([]time.Duration, 0, n)
		for i := range n {
			p := engine.Payment{TransactionID: fmt.Sprintf("lat-%v-%d", withHook, i), Amount: 200000, Currency: "USD"}
			start := time.Now()
			rec, _, err := s.engine.Decide(context.Background(), p, nil)
			lat = append(lat, time.Since(start))
			if err != nil || rec.Outcome != engine.Deny {
				t.Fatalf("decision %d: %v %v", i, err, rec)
			}
		}
		slices.Sort(lat)
		if _, err := s.n.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		return lat[n/2], lat[n*99/100], peak.Load(), 0
	}
	b50, b99, _, _ := run(false)
	d50, d99, peak, _ := run(true)
	t.Logf("decision latency over %d decisions: no webhook p50 %v p99 %v; dead receiver p50 %v p99 %v", n, b50, b99, d50, d99)
	if peak > 1 {
		t.Errorf("%d deliveries to one dead receiver in flight at once, want at most 1", peak)
	}
}
