package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/rules"
)

// resyncEvery is how often a cluster node re-reads everything it keeps in
// memory, whether or not it was told of a change: what heals a missed
// announcement.
const resyncEvery = 30 * time.Second

// reloader re-reads one in-memory copy of shared state.
type reloader struct {
	name string
	// keys are the registered prefixes or keys whose change calls load.
	keys []string
	load func(ctx context.Context) error
}

// followChanges keeps a cluster node's in-memory copies (lists, limits,
// keys, the live rule set, drafts and canary, feature definitions, review
// policy, webhooks, alert rules) in step with what other nodes write: it
// re-reads a copy when PostgreSQL announces a change to its keys, and all
// of them every resyncEvery. It returns when ctx ends. A single node has
// nothing to follow.
func followChanges(ctx context.Context, st *storage, rs []reloader, log *slog.Logger) {
	if st.watch == nil {
		return
	}
	changes := make(chan []string, 64)
	go st.watch(ctx, func(prefixes []string) {
		select {
		case changes <- prefixes:
		case <-ctx.Done():
		}
	})
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		var prefixes []string
		select {
		case <-ctx.Done():
			return
		case prefixes = <-changes:
		case <-tick.C:
		}
		for _, r := range rs {
			if prefixes != nil && !touches(r.keys, prefixes) {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := r.load(rctx); err != nil && ctx.Err() == nil {
				log.Error("re-read shared state after a change", "what", r.name, "err", err)
			}
			cancel()
		}
	}
}

// touches reports whether a changed prefix is one of keys or holds it.
func touches(keys, changed []string) bool {
	for _, c := range changed {
		for _, k := range keys {
			if strings.HasPrefix(k, c) || strings.HasPrefix(c, k) {
				return true
			}
		}
	}
	return false
}

// liveRules re-reads the latest published version and makes it live when
// it is not the one this node runs: a publish or rollback on another node.
func liveRules(versions *admin.Versions, eng *engine.Engine, env func() rules.Env) func(context.Context) error {
	return func(context.Context) error {
		latest, err := versions.Latest()
		if errors.Is(err, engine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur := eng.Rules(); cur != nil && cur.Version() == latest.Number {
			return nil
		}
		set, err := rules.Compile(latest.Spec, env(), latest.Number)
		if err != nil {
			return fmt.Errorf("compile rule set version %d: %w", latest.Number, err)
		}
		eng.SetRules(set)
		return nil
	}
}

// clusterReloaders lists what followChanges re-reads, by the keys that
// announce a change to it.
func clusterReloaders(a *app, st *storage, versions *admin.Versions, env func() rules.Env, api *admin.API) []reloader {
	rs := []reloader{
		{"lists", []string{keyspace.ListMeta, keyspace.ListItem}, func(context.Context) error { return a.lists.Load() }},
		{"limits", []string{keyspace.LimitsPolicy, keyspace.LimitOverride, keyspace.Trust}, a.limiter.Load},
		{"api keys", []string{keyspace.APIKey}, func(context.Context) error { return a.keys.Load() }},
		{"live rule set", []string{keyspace.RuleSetVersion}, liveRules(versions, a.engine, env)},
		{"drafts and canary", []string{keyspace.DraftRule, keyspace.DraftMeta, keyspace.Canary}, func(context.Context) error { return api.Load() }},
		{"review policy", []string{keyspace.ReviewPolicy}, a.reviews.Load},
		{"webhooks", []string{keyspace.WebhookHook}, a.notifier.hooks.Load},
		{"alert rules", []string{keyspace.AlertRule}, a.notifier.alerts.Load},
	}
	if st.reloadFeatures != nil {
		rs = append(rs, reloader{"feature definitions", []string{keyspace.Definitions}, st.reloadFeatures})
	}
	return rs
}
