package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/console"
)

// wireConsole registers the rules dry-run endpoint on the admin API and the
// web console at /console/ (with GET / redirecting to it). The console
// calls the same HTTP API in-process as the signed-in key, so its roles are
// the API's (docs/console.md). In dev mode (auth nil) any key signs in as
// the admin "dev". Sessions live in the store, so every node of a cluster
// serves every signed-in browser.
func wireConsole(log *slog.Logger, st *storage, lists *features.Lists, limiter engine.Limiter, api *admin.API, auth server.Authenticator, srv *server.Server) error {
	admin.RegisterDryRun(srv.Group("/admin"), srv.Require, admin.NewDryRun(admin.DryRunConfig{
		Decisions: st.decisions, Features: st.features, Limiter: limiter, Draft: api.Draft,
		Env: func() rules.Env { return rules.Env{Features: featureNames(st.features), Lists: lists} },
	}))
	var ca console.Authenticator
	if auth != nil {
		ca = auth
	}
	con, err := console.New(console.Config{API: srv.Handler(), Auth: ca, Log: log, Sessions: consoleSessions{st.kv}})
	if err != nil {
		return err
	}
	con.Register(srv.Group(""))
	return nil
}

// consoleSessions keeps the console's sessions in the kv store under
// keyspace.ConsoleSession: Badger on one node, PostgreSQL in a cluster,
// where any node then serves a signed-in browser.
type consoleSessions struct{ db kv.DB }

func (s consoleSessions) GetSession(ctx context.Context, handle string) ([]byte, bool, error) {
	v, err := kv.Get(ctx, s.db, []byte(keyspace.ConsoleSession+handle))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s consoleSessions) PutSession(ctx context.Context, handle string, value []byte, ttl time.Duration) error {
	return s.db.Update(ctx, func(tx kv.Tx) error {
		return tx.SetTTL([]byte(keyspace.ConsoleSession+handle), value, ttl)
	})
}

func (s consoleSessions) DeleteSession(ctx context.Context, handle string) error {
	return kv.Delete(ctx, s.db, []byte(keyspace.ConsoleSession+handle))
}
