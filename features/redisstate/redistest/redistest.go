// Package redistest gives tests the machine's Redis: its address, and the
// removal of a test's keys. Like pgtest it skips a test when the server is
// unreachable, except under CI=true, where that fails the test.
package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultAddr is the Redis used when RISK_TEST_REDIS_URL is not set.
const DefaultAddr = "127.0.0.1:6379"

// Addr returns the test Redis's address (RISK_TEST_REDIS_URL, else
// DefaultAddr) once it answers a PING.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := DefaultAddr
	if u := os.Getenv("RISK_TEST_REDIS_URL"); u != "" {
		o, err := redis.ParseURL(u)
		if err != nil {
			tb.Fatalf("RISK_TEST_REDIS_URL: %v", err)
		}
		addr = o.Addr
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s unreachable (CI=true): %v", addr, err)
		}
		tb.Skipf("redis at %s unreachable, skipping (set RISK_TEST_REDIS_URL): %v", addr, err)
	}
	return addr
}

// DeleteKeys removes every key of an engine's prefix (they all start with
// "{prefix"), on every master of a Redis Cluster.
func DeleteKeys(c redis.UniversalClient, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "{"+prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			if err := c.Del(ctx, it.Val()).Err(); err != nil {
				return err
			}
		}
		return it.Err()
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	case *redis.Client:
		return del(ctx, c)
	}
	return nil
}
