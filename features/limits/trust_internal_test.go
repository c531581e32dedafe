package limits

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrustMissReadsOutsideTheLock checks that a trust cache miss reads
// storage outside its shard's lock (another entity of the shard does not
// wait for it; features' TestWindowMissReadsOutsideTheLock is the same for
// windows), and that a put made during a read wins.
func TestTrustMissReadsOutsideTheLock(t *testing.T) {
	release := make(chan struct{})
	var slowReads atomic.Int32
	var c trustCache
	c.init(64, func(_ context.Context, entity string) (trustEntry, error) {
		if entity == "slow" {
			slowReads.Add(1)
			<-release
			return trustEntry{trust: 1}, nil
		}
		return trustEntry{trust: 2}, nil
	})
	// Another entity of the slow one's shard.
	other := ""
	for i := 0; other == ""; i++ {
		if k := fmt.Sprintf("e%d", i); c.shard(k) == c.shard("slow") {
			other = k
		}
	}
	got := make(chan trustEntry, 1)
	go func() {
		e, err := c.get(context.Background(), "slow")
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	for deadline := time.Now().Add(10 * time.Second); slowReads.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the read never started")
		}
		<-time.After(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		if e, err := c.get(context.Background(), other); err != nil || e.trust != 2 {
			t.Errorf("get(%s) = %+v, %v", other, e, err)
		}
		close(done)
	}()
	blocked := false
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("an entity of the same shard waited for another entity's Badger read")
		blocked = true
	}
	// A label changes the slow entity while its read is stuck: the read
	// returns the older state to its caller but must not be cached.
	if !blocked {
		c.put("slow", trustEntry{trust: 0.5})
	}
	close(release)
	<-got
	<-done
	if blocked {
		return
	}
	if e, err := c.get(context.Background(), "slow"); err != nil || e.trust != 0.5 {
		t.Errorf("after the put: %+v, %v; want trust 0.5", e, err)
	}
}
