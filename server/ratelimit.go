package server

import (
	"math"
	"sync"
	"time"
)

// RateLimit bounds how many requests one API key may make. The zero value
// disables limiting.
type RateLimit struct {
	// PerSecond is the sustained rate each key may keep up, in requests per
	// second; zero or less disables limiting.
	PerSecond float64
	// Burst is how many requests a key that has been idle may make at once;
	// zero or less means PerSecond rounded up (at least 1).
	Burst int
}

// limiter is a token bucket per principal: every key starts with Burst
// tokens, gains PerSecond tokens a second up to Burst, and spends one per
// request. Buckets exist only for authenticated keys, so their number is
// bounded by the number of keys. It is safe for concurrent use.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	buckets sync.Map // key id -> *bucket
}

type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter for rl, or nil when rl disables limiting.
// now is the clock; nil means time.Now.
func newLimiter(rl RateLimit, now func() time.Time) *limiter {
	if rl.PerSecond <= 0 {
		return nil
	}
	burst := float64(rl.Burst)
	if burst <= 0 {
		burst = max(1, math.Ceil(rl.PerSecond))
	}
	if now == nil {
		now = time.Now
	}
	return &limiter{rate: rl.PerSecond, burst: burst, now: now}
}

// allow spends one token of key's bucket. When the bucket is empty it
// returns false and how long until a token is there. A nil limiter allows
// everything.
func (l *limiter) allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	v, found := l.buckets.Load(key)
	if !found {
		v, _ = l.buckets.LoadOrStore(key, &bucket{tokens: l.burst, last: l.now()})
	}
	b := v.(*bucket)
	now := l.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// retryAfterSeconds is the Retry-After header value for a wait: whole
// seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
