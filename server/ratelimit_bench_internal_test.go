package server

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkLimiterAllow is the per-request cost of the rate limiter: every
// goroutine spends tokens of one of 64 keys, under a rate no key reaches, so
// each call is one allowed request.
func BenchmarkLimiterAllow(b *testing.B) {
	l := newLimiter(RateLimit{PerSecond: 1e9, Burst: 1e9}, nil)
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "key_" + strconv.Itoa(i)
	}
	var next atomic.Int64
	var refused atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			if ok, _ := l.allow(keys[i%len(keys)]); !ok {
				refused.Add(1)
			}
			i++
		}
	})
	if n := refused.Load(); n != 0 {
		b.Errorf("%d requests refused under an unreachable rate", n)
	}
}
