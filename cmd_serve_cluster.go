package main

import (
	"errors"
	"flag"
	"net/url"
	"strings"
)

// clusterConfig is how a node finds the shared PostgreSQL and Redis of
// cluster mode (docs/cluster.md). Both empty is single-node mode on Badger.
type clusterConfig struct {
	Postgres     string
	Redis        string
	RedisCluster string
	// RedisPrefix starts every Redis key, so clusters (or tests) can share
	// one Redis.
	RedisPrefix string
}

func clusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.Postgres, "postgres", env("RISK_POSTGRES_URL", ""), "cluster mode: PostgreSQL URL, the system of record shared by every node, e.g. postgres://risk@db:5432/risk?sslmode=disable [RISK_POSTGRES_URL]")
	fs.StringVar(&c.Redis, "redis", env("RISK_REDIS_URL", ""), "cluster mode: Redis URL for the hot feature state, e.g. redis://cache:6379/0 [RISK_REDIS_URL]")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", env("RISK_REDIS_PREFIX", "risk"), "cluster mode: what every Redis key of this cluster starts with, when clusters share a Redis [RISK_REDIS_PREFIX]")
	fs.StringVar(&c.RedisCluster, "redis-cluster", env("RISK_REDIS_CLUSTER", ""), "cluster mode: seed addresses of a Redis Cluster instead of --redis, HOST:PORT,HOST:PORT,… [RISK_REDIS_CLUSTER]")
}

// Enabled reports whether the node runs in cluster mode.
func (c clusterConfig) Enabled() bool {
	return c.Postgres != "" || c.Redis != "" || c.RedisCluster != ""
}

// RedisAddrs are the Redis Cluster seeds, trimmed.
func (c clusterConfig) RedisAddrs() []string {
	var out []string
	for a := range strings.SplitSeq(c.RedisCluster, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (c clusterConfig) validate() error {
	if !c.Enabled() {
		return nil
	}
	switch {
	case c.Postgres == "":
		return errors.New("cluster mode needs --postgres (RISK_POSTGRES_URL) as well as Redis; start without --redis/--redis-cluster for single-node mode on Badger")
	case c.Redis == "" && c.RedisCluster == "":
		return errors.New("cluster mode needs --redis (RISK_REDIS_URL) or --redis-cluster (RISK_REDIS_CLUSTER) as well as --postgres; start without --postgres for single-node mode on Badger")
	case c.Redis != "" && c.RedisCluster != "":
		return errors.New("give either --redis or --redis-cluster, not both")
	}
	if u, err := url.Parse(c.Postgres); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("--postgres: want a URL such as postgres://risk@db:5432/risk?sslmode=disable")
	}
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return errors.New("--redis: want a URL such as redis://cache:6379/0")
		}
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{}") {
		return errors.New("--redis-prefix must be non-empty and hold no braces")
	}
	if c.RedisCluster != "" && len(c.RedisAddrs()) == 0 {
		return errors.New("--redis-cluster: want HOST:PORT,HOST:PORT,…")
	}
	return nil
}
