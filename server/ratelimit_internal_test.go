package server

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterRefill drives the token bucket with a fake clock.
func TestLimiterRefill(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(RateLimit{PerSecond: 10, Burst: 5}, func() time.Time { return now })
	steps := []struct {
		advance   time.Duration
		want      bool
		wantRetry time.Duration
	}{
		{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, // the burst
		{0, false, 100 * time.Millisecond},
		{50 * time.Millisecond, false, 50 * time.Millisecond},
		{50 * time.Millisecond, true, 0},
		{0, false, 100 * time.Millisecond},
		{time.Hour, true, 0}, // refills to the burst, not beyond
		{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0},
		{0, false, 100 * time.Millisecond},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, retry := l.allow("k")
		if ok != s.want || (retry-s.wantRetry).Abs() > time.Millisecond {
			t.Fatalf("step %d: allow = %v, retry %v; want %v, %v", i, ok, retry, s.want, s.wantRetry)
		}
	}
	if ok, _ := l.allow("other"); !ok {
		t.Error("another key shares the bucket")
	}
	if newLimiter(RateLimit{}, nil) != nil {
		t.Error("zero RateLimit is not unlimited")
	}
	if ok, _ := (*limiter)(nil).allow("k"); !ok {
		t.Error("nil limiter refuses")
	}
	if got := retryAfterSeconds(100 * time.Millisecond); got != 1 {
		t.Errorf("Retry-After of 100ms = %d, want 1", got)
	}
	if got := retryAfterSeconds(2500 * time.Millisecond); got != 3 {
		t.Errorf("Retry-After of 2.5s = %d, want 3", got)
	}
}

// TestLimiterBoundedKeys: past maxLimitedKeys keys the least recently used
// bucket goes, and a key in use keeps its (spent) bucket.
func TestLimiterBoundedKeys(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 1}, func() time.Time { return now })
	if ok, _ := l.allow("busy"); !ok {
		t.Fatal("first request of busy refused")
	}
	for i := range maxLimitedKeys + 100 {
		l.allow(fmt.Sprintf("k%d", i))
		if i%1000 == 0 {
			if ok, _ := l.allow("busy"); ok {
				t.Fatalf("busy allowed again after %d other keys: its bucket was dropped while in use", i)
			}
		}
	}
	if n := l.keys.Len(); n != maxLimitedKeys {
		t.Errorf("%d buckets, want the bound %d", n, maxLimitedKeys)
	}
	if l.keys.Contains("k0") {
		t.Error("the least recently used key k0 still has a bucket")
	}
}
