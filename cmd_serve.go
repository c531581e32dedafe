package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
)

// serve is `risk [flags]`: it opens the store, wires the engine, the HTTP
// server and the admin API on it, and runs until SIGINT or SIGTERM, then
// shuts down in order: stop accepting, drain, stop backtests, close the
// store.
func serve(args []string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if c.Version {
		return printVersion(stdout)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}

	open := openBadger
	if c.Cluster.Enabled() {
		open = openCluster
	}
	st, err := open(ctx, c, log)
	if err != nil {
		return err
	}
	closeStore := func() {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := st.close(cctx); err != nil {
			log.Error("close store", "err", err)
		}
	}
	app, err := wire(ctx, c, st, log)
	if err != nil {
		closeStore()
		return err
	}
	if err := st.start(ctx); err != nil {
		closeStore()
		return err
	}
	go app.follow(ctx)
	if c.Dev {
		log.Warn("DEV MODE: authentication is OFF, every request acts as an admin; never use --dev beyond this machine", "addr", c.Addr)
	} else if err := bootstrapKeys(ctx, app.keys, c.AdminKey, stderr, log); err != nil {
		closeStore()
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		closeStore()
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	log.Info("serving", "addr", ln.Addr().String(), "mode", st.mode, "data", c.DataDir, "ruleset_version", app.engine.Rules().Version())
	served := make(chan error, 1)
	go func() { served <- app.server.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := app.server.Shutdown(sctx); serr != nil {
		log.Error("drain http", "err", serr)
	}
	if berr := app.backtests.Close(sctx); berr != nil {
		log.Error("stop backtests", "err", berr)
	}
	if rerr := app.reviews.Close(sctx); rerr != nil {
		log.Error("stop review queue", "err", rerr)
	}
	if nerr := app.notifier.Close(sctx); nerr != nil {
		log.Error("stop webhooks", "err", nerr)
	}
	closeStore()
	log.Info("stopped")
	return err
}

// app is the wired service.
type app struct {
	engine    *engine.Engine
	server    *server.Server
	backtests *backtest.Backtests
	keys      *admin.Keys
	reviews   *review.Queue
	notifier  *notifier
	lists     *features.Lists
	limiter   *limits.Limiter
	// follow keeps a cluster node's in-memory state in step with the
	// other nodes until ctx ends (followChanges); it returns at once on a
	// single node.
	follow func(ctx context.Context)
}

// wire loads definitions, lists and the live rule set, and builds the
// engine and the HTTP server on an open store.
func wire(ctx context.Context, c config, st *storage, log *slog.Logger) (*app, error) {
	lists := features.NewLists(st.kv, nil)
	if err := lists.Load(); err != nil {
		return nil, err
	}
	defs, err := readOptional(c.FeaturesFile, "features")
	if err != nil {
		return nil, err
	}
	if err := admin.LoadDefinitions(ctx, st.features, defs); err != nil {
		return nil, err
	}
	if st.reloadFeatures != nil {
		// Another node starting at the same time may have stored the
		// definitions after this one opened the cluster.
		if err := st.reloadFeatures(ctx); err != nil {
			log.Warn("feature definitions not re-read", "err", err)
		}
	}
	// One audit trail instance for every writer: it numbers entries in
	// memory. Pass it to admin.New as Config.Audit.
	audit := admin.NewAudit(st.kv, nil)
	limiter, err := limits.New(st.limits, limits.Options{
		Compile: compilePaymentPredicate, Lists: lists, Audit: admin.LimitsAudit(audit),
	})
	if err != nil {
		return nil, err
	}
	if err := limiter.Load(ctx); err != nil {
		return nil, err
	}
	metrics := server.NewMetrics(server.MetricsConfig{StoreStats: st.stats, Build: buildInfo()})
	for _, col := range st.collectors {
		if err := metrics.Registry().Register(col); err != nil {
			return nil, fmt.Errorf("register store metrics: %w", err)
		}
	}
	eng := engine.New(engine.Config{
		Store: metrics.TimeStore(st.decisions), Features: metrics.TimeFeatures(st.features), Limiter: limiter, Labels: st.decisions, Trust: limiter,
		Budget: c.Budget, Fallback: engine.Outcome(c.Fallback), FallbackByMerchant: c.FallbackByMerchant,
		Observer: metrics, Log: log,
	})
	versions := admin.NewVersions(st.kv, nil)
	env := rules.Env{Features: featureNames(st.features), Lists: lists}
	ruleFile, err := readOptional(c.RulesFile, "rules")
	if err != nil {
		return nil, err
	}
	if err := admin.LoadRules(versions, lists, env, ruleFile, c.RulesFile, func(s *rules.Set) { eng.SetRules(s) }); err != nil {
		return nil, err
	}
	keys := admin.NewKeys(st.kv, audit, nil)
	if err := keys.Load(); err != nil {
		return nil, err
	}
	var auth server.Authenticator = keys
	if c.Dev {
		auth = nil // dev mode: every request is the admin "dev"
	}
	srv := server.New(server.Config{
		Engine: eng, Decisions: st.decisions, Feedback: eng, Log: log, Auth: auth, Metrics: metrics,
		RateLimit: server.RateLimit{PerSecond: c.RateLimit, Burst: c.RateBurst},
		Ready: func() error {
			if eng.Rules() == nil {
				return errors.New("no rule set loaded")
			}
			rctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
			defer cancel()
			return st.ready(rctx)
		},
	})
	// The analysts' API: draft rules, publish and versions, lists,
	// features and the audit trail (docs/admin-api.md).
	api := admin.New(admin.Config{
		DB: st.kv, Engine: eng, Versions: versions, Lists: lists, Features: st.features, Audit: audit, Log: log,
	})
	if err := api.Load(); err != nil {
		return nil, err
	}
	api.Register(srv.Group("/admin"), srv.Require)
	// Backtests replay the decision log through a candidate rule set; they
	// run in the background, one at a time per node, and are stopped
	// before the store closes. Their status is kept in the store, so every
	// node of a cluster answers for them.
	backtests := backtest.New(backtest.Config{
		History: st.decisions, Versions: versions, Draft: api.Draft, Log: log, Store: st.kv,
		Env: func() rules.Env { return rules.Env{Features: featureNames(st.features), Lists: lists} },
	})
	backtest.Register(srv.Group("/admin"), srv.Require, backtests)
	admin.RegisterLimits(srv.Group("/admin"), srv.Require, limiter)
	admin.RegisterStats(srv.Group("/admin"), srv.Require, st.decisions, nil)
	keys.Register(srv.Group("/admin"), srv.Require)
	admin.RegisterBackup(srv.Group("/admin"), srv.Require, st.backup, audit, log)
	notifier, err := wireNotify(ctx, c, st, audit, api, srv, metrics.Registry(), log)
	if err != nil {
		return nil, err
	}
	reviews, err := wireReview(ctx, c, st, eng, lists, audit, srv, log, reviewEvents(notifier))
	if err != nil {
		return nil, err
	}
	if err := wireConsole(log, st, lists, limiter, api, auth, srv); err != nil {
		return nil, err
	}
	a := &app{engine: eng, server: srv, backtests: backtests, keys: keys, reviews: reviews, notifier: notifier, lists: lists, limiter: limiter}
	envNow := func() rules.Env { return rules.Env{Features: featureNames(st.features), Lists: lists} }
	reloaders := clusterReloaders(a, st, versions, envNow, api)
	a.follow = func(ctx context.Context) { followChanges(ctx, st, reloaders, log) }
	return a, nil
}

// bootstrapKeys makes sure an admin can reach the service: it ensures the
// operator's admin key (RISK_ADMIN_KEY or --admin-key) exists, and when no
// admin key is active at all it generates one and prints it to stderr,
// once.
func bootstrapKeys(ctx context.Context, keys *admin.Keys, adminKey string, stderr io.Writer, log *slog.Logger) error {
	ctx = engine.WithPrincipal(ctx, engine.Principal{Name: "startup"})
	if adminKey != "" {
		k, created, err := keys.Ensure(ctx, adminKey, "bootstrap", engine.RoleAdmin)
		switch {
		case err != nil:
			return fmt.Errorf("admin key from RISK_ADMIN_KEY/--admin-key: %w", err)
		case created:
			log.Info("admin key stored", "key_id", k.ID, "name", k.Name)
		case !k.Active():
			log.Warn("RISK_ADMIN_KEY/--admin-key is a revoked key; it stays revoked", "key_id", k.ID)
		case k.Role != engine.RoleAdmin:
			log.Warn("RISK_ADMIN_KEY/--admin-key exists with another role; it keeps it", "key_id", k.ID, "role", k.Role)
		}
	}
	// Re-read: in a cluster another node may have stored the key (or
	// another admin key) since this one loaded them.
	if err := keys.Load(); err != nil {
		return err
	}
	if keys.HasActiveAdmin() {
		return nil
	}
	k, secret, err := keys.Create(ctx, "bootstrap", engine.RoleAdmin)
	if errors.Is(err, engine.ErrConflict) {
		k, secret, err = keys.Create(ctx, "bootstrap-"+time.Now().UTC().Format("20060102T150405"), engine.RoleAdmin)
	}
	if err != nil {
		return fmt.Errorf("generate an admin key: %w", err)
	}
	log.Warn("no admin key existed: generated one and printed it to stderr once", "key_id", k.ID, "name", k.Name)
	fmt.Fprintf(stderr, "\n  risk: generated an admin key. It is shown only this once:\n\n    %s\n\n"+
		"  Store it in a secret manager; create narrower keys with POST /admin/keys.\n"+
		"  Set RISK_ADMIN_KEY to choose the admin key yourself.\n\n", secret)
	return nil
}

// storeStats adapts the feature store's figures for the metrics.
func storeStats(store *features.Store) func() server.StoreStats {
	return func() server.StoreStats {
		s := store.Stats()
		return server.StoreStats{
			CacheHits: s.CacheHits, CacheMisses: s.CacheMisses, CachedWindows: s.CachedWindows,
			LSMBytes: s.LSMBytes, VLogBytes: s.VLogBytes, LastSeq: s.LastSeq, CorruptStates: s.CorruptStates,
		}
	}
}

// compileFilter compiles a feature filter with the rule language, so that
// features need not import rules.
func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// compilePaymentPredicate compiles a limit's payment predicate with the
// rule language.
func compilePaymentPredicate(src string) (limits.PaymentPredicate, error) {
	p, err := rules.CompilePaymentPredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// featureNames are the names of the store's feature definitions, the
// feature environment rules compile against.
func featureNames(store admin.FeatureDefinitions) []string {
	defs := store.Definitions()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return names
}

// readOptional reads file, or is nil for no file; what names it in errors.
func readOptional(file, what string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if b == nil {
		b = []byte{} // an empty file is a file, not "no file"
	}
	return b, nil
}
