package main

import (
	"log/slog"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/console"
)

// wireConsole registers the rules dry-run endpoint on the admin API and the
// web console at /console/ (with GET / redirecting to it). The console
// calls the same HTTP API in-process as the signed-in key, so its roles are
// the API's (docs/console.md). In dev mode (auth nil) any key signs in as
// the admin "dev".
func wireConsole(log *slog.Logger, st *storage, lists *features.Lists, limiter engine.Limiter, api *admin.API, auth server.Authenticator, srv *server.Server) error {
	admin.RegisterDryRun(srv.Group("/admin"), srv.Require, admin.NewDryRun(admin.DryRunConfig{
		Decisions: st.decisions, Features: st.features, Limiter: limiter, Draft: api.Draft,
		Env: func() rules.Env { return rules.Env{Features: featureNames(st.features), Lists: lists} },
	}))
	var ca console.Authenticator
	if auth != nil {
		ca = auth
	}
	con, err := console.New(console.Config{API: srv.Handler(), Auth: ca, Log: log})
	if err != nil {
		return err
	}
	con.Register(srv.Group(""))
	return nil
}
