// Command risk is a payment risk-control and fraud screening engine: a
// gateway posts a payment and gets allow, challenge or deny, with a score,
// the reasons and the customer's dynamic limits.
//
// With no subcommand it serves HTTP. Subcommands:
//
//	risk rules validate FILE   check a rule set file offline
//	risk loadgen ...           drive a running engine with synthetic traffic
//	risk backup ...            back up a running server (--target) or a data dir (--data)
//	risk restore --data DIR F  restore a backup into a new data directory
//	risk keys generate         print a new random API key (for RISK_ADMIN_KEY)
//	risk replay ... EVENTS     decide a file of payments offline (docs/backtest.md)
//
// This file is the whole of package main, in four parts: the entry point,
// the serve configuration (flags and environment, validated once), the
// wiring of the service, and the other subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // hour_of_day and day_of_week work in minimal images

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/loadgen"
)

// Entry point
//
// run dispatches on the first argument: a subcommand, or serving.

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0, or 1
// with the error on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) >= 1 && args[0] == "rules":
		err = rulesCommand(args[1:], stdout)
	case len(args) >= 1 && args[0] == "loadgen":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = loadgen.Run(ctx, args[1:], stdout)
	case len(args) >= 1 && args[0] == "replay":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = backtest.ReplayCommand(ctx, args[1:], os.Stdin, stdout, stderr)
	case len(args) >= 1 && isOpsCommand(args[0]):
		err = opsCommand(args, stdout, stderr)
	default:
		err = serve(args, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "risk:", err)
		return 1
	}
	return 0
}

// Configuration
//
// The serve flags, each with an environment variable as its default, are
// parsed and validated once here and passed down as plain values.

// Defaults of the serve flags.
const (
	defaultAddr     = ":8080"
	defaultDataDir  = "./data"
	shutdownTimeout = 15 * time.Second
	// defaultGCPercent is the garbage collector's target when GOGC is not
	// set. The window cache is a large, long-lived heap that every
	// collection marks; at Go's default of 100 marking took about a fifth
	// of the CPU under load (docs/performance.md). 400 trades heap headroom
	// (up to five times the live heap) for a quarter of that work.
	defaultGCPercent = 400
)

// config is the serve configuration, from flags with environment fallbacks.
type config struct {
	Addr          string
	DataDir       string
	RulesFile     string
	FeaturesFile  string
	SyncWrites    bool
	FlushInterval time.Duration
	CacheEntries  int
	Retention     time.Duration
	Budget        time.Duration
	Fallback      string
	LogLevel      string
	LimitsEntity  string
	// AdminKey is ensured as an admin key at start (docs/security.md).
	AdminKey string
	// Dev turns authentication off; only on a loopback --addr.
	Dev bool
	// FallbackMerchants is --fallback-merchant as given; FallbackByMerchant
	// is it parsed by validate.
	FallbackMerchants  string
	FallbackByMerchant map[string]engine.Outcome
	RateLimit          float64
	RateBurst          int
	Review             reviewConfig
}

// parseConfig parses the serve flags, with the environment variables as
// their defaults, and validates the result. A set environment variable that
// does not parse is an error naming it and its value (see envVars).
func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("risk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk [flags]            serve the engine\n"+
			"       risk rules validate FILE check a rule set file\n"+
			"       risk loadgen --help      load generator\n"+
			"       risk replay --help       offline replay of a payments file\n"+
			"       risk backup --help       online or offline backup\n"+
			"       risk restore --help      restore a backup into a new data directory\n"+
			"       risk keys generate       print a new random API key\n\nFlags (environment variable in brackets):\n")
		fs.PrintDefaults()
	}
	var (
		c  config
		ev envVars
	)
	fs.StringVar(&c.Addr, "addr", env("RISK_ADDR", defaultAddr), "listen address [RISK_ADDR]")
	fs.StringVar(&c.DataDir, "data", env("RISK_DATA_DIR", defaultDataDir), "data directory for Badger [RISK_DATA_DIR]")
	fs.StringVar(&c.RulesFile, "rules", env("RISK_RULES", ""), "rule set YAML file published at start; empty keeps the live version, or the bundled sample on first start [RISK_RULES]")
	fs.StringVar(&c.FeaturesFile, "features", env("RISK_FEATURES", ""), "feature definitions YAML file applied at start; empty keeps the stored ones, or the bundled sample on first start [RISK_FEATURES]")
	fs.BoolVar(&c.SyncWrites, "sync-writes", ev.Bool("RISK_SYNC_WRITES", false), "fsync every decision before answering (survives power loss, slower) [RISK_SYNC_WRITES]")
	fs.DurationVar(&c.FlushInterval, "flush-interval", ev.Duration("RISK_FLUSH_INTERVAL", features.DefaultFlushInterval), "how often feature windows are written to Badger [RISK_FLUSH_INTERVAL]")
	fs.IntVar(&c.CacheEntries, "cache-entries", ev.Int("RISK_CACHE_ENTRIES", features.DefaultCacheEntries), "entity windows kept in memory [RISK_CACHE_ENTRIES]")
	fs.DurationVar(&c.Retention, "retention", ev.Duration("RISK_RETENTION", features.DefaultRetention), "how long decision records are kept [RISK_RETENTION]")
	fs.DurationVar(&c.Budget, "budget", ev.Duration("RISK_BUDGET", engine.DefaultBudget), "time budget of one decision; past it the decision is degraded [RISK_BUDGET]")
	fs.StringVar(&c.Fallback, "fallback", env("RISK_FALLBACK", string(engine.DefaultFallback)), "least strict outcome of a degraded decision: allow, challenge or deny [RISK_FALLBACK]")
	fs.StringVar(&c.LogLevel, "log-level", env("RISK_LOG_LEVEL", "info"), "debug, info, warn or error [RISK_LOG_LEVEL]")
	fs.StringVar(&c.LimitsEntity, "limits-entity", env("RISK_LIMITS_ENTITY", features.EntityAccount), "what dynamic limits are kept per: account, card or account_merchant (docs/limits.md) [RISK_LIMITS_ENTITY]")
	fs.StringVar(&c.AdminKey, "admin-key", env("RISK_ADMIN_KEY", ""), "admin API key ensured at start (at least 32 characters, see: risk keys generate); prefer the environment variable [RISK_ADMIN_KEY]")
	fs.BoolVar(&c.Dev, "dev", ev.Bool("RISK_DEV", false), "DEVELOPMENT ONLY: no authentication, every request is an admin; refused unless --addr is a loopback address [RISK_DEV]")
	fs.StringVar(&c.FallbackMerchants, "fallback-merchant", env("RISK_FALLBACK_MERCHANT", ""), "per-merchant fallback overriding --fallback, e.g. m_1=deny,m_2=allow [RISK_FALLBACK_MERCHANT]")
	fs.Float64Var(&c.RateLimit, "rate-limit", ev.Float("RISK_RATE_LIMIT", 0), "requests per second each API key may sustain; 0 is unlimited [RISK_RATE_LIMIT]")
	fs.IntVar(&c.RateBurst, "rate-burst", ev.Int("RISK_RATE_BURST", 0), "requests a key may make at once after being idle; 0 means --rate-limit rounded up [RISK_RATE_BURST]")
	reviewFlags(fs, &c.Review, &ev)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// After the flags, so that --help works whatever the environment.
	if err := ev.Err(); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unknown subcommand %q (see --help)", fs.Arg(0))
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	var err error
	c.FallbackByMerchant, err = parseFallbackMerchants(c.FallbackMerchants)
	return c, err
}

// validate checks the flag values that parse but cannot be served with.
func (c config) validate() error {
	switch {
	case c.Dev && checkDevAddr(c.Addr) != nil:
		return checkDevAddr(c.Addr)
	case c.RateLimit < 0 || c.RateBurst < 0:
		return fmt.Errorf("--rate-limit and --rate-burst must not be negative")
	case !engine.Outcome(c.Fallback).Valid():
		return fmt.Errorf("--fallback %q: want allow, challenge or deny", c.Fallback)
	case c.Budget <= 0:
		return fmt.Errorf("--budget must be positive")
	case c.CacheEntries <= 0:
		return fmt.Errorf("--cache-entries must be positive")
	case !features.ValidLimitsEntity(c.LimitsEntity):
		return fmt.Errorf("--limits-entity %q: want account, card or account_merchant", c.LimitsEntity)
	case c.DataDir == "":
		return fmt.Errorf("--data is required")
	case c.Review.validate() != nil:
		return c.Review.validate()
	case c.AdminKey != "" && (len(c.AdminKey) < admin.MinKeyLen || len(c.AdminKey) > admin.MaxKeyLen):
		// Checked before anything is opened, so a refused start leaves no data directory behind.
		return fmt.Errorf("RISK_ADMIN_KEY/--admin-key must hold %d to %d characters; generate one with: risk keys generate", admin.MinKeyLen, admin.MaxKeyLen)
	}
	return nil
}

// checkDevAddr allows dev mode (no authentication) only on a loopback
// address, so it cannot be switched on for a reachable server by accident.
func checkDevAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--dev turns authentication off and is allowed only on a loopback address such as --addr 127.0.0.1:8080, not %q", addr)
}

// parseFallbackMerchants parses "m_1=deny,m_2=allow".
func parseFallbackMerchants(s string) (map[string]engine.Outcome, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]engine.Outcome{}
	for part := range strings.SplitSeq(s, ",") {
		id, o, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, o = strings.TrimSpace(id), strings.TrimSpace(o)
		if !ok || id == "" || !engine.Outcome(o).Valid() {
			return nil, fmt.Errorf("--fallback-merchant %q: want MERCHANT=allow|challenge|deny, comma separated", part)
		}
		out[id] = engine.Outcome(o)
	}
	return out, nil
}

// env is the value of the environment variable name, or def when it is
// not set.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envVars reads the typed environment variables behind the serve flags.
// A variable that is set but does not parse is kept as an error rather
// than replaced by its default, so that a typo in a deployment
// (RISK_BUDGET=50) stops the start like a malformed flag instead of
// running on a value nobody chose; this holds even when the flag is also
// given. Values are trimmed of spaces, then parsed as the flag package
// parses the flag. The zero value is ready to use.
type envVars struct {
	errs []error
}

// Bool is name as a boolean (1, t, true, 0, f, false in any case), or def
// when name is not set.
func (e *envVars) Bool(name string, def bool) bool {
	return envParse(e, name, def, strconv.ParseBool, "true or false")
}

// Int is name as an integer in Go syntax, as the flag package reads one
// (0x10 is 16, and 010 is 8), or def when name is not set.
func (e *envVars) Int(name string, def int) int {
	return envParse(e, name, def, func(s string) (int, error) {
		n, err := strconv.ParseInt(s, 0, strconv.IntSize)
		return int(n), err
	}, "an integer")
}

// Duration is name as a Go duration such as 50ms or 2h, or def when name
// is not set.
func (e *envVars) Duration(name string, def time.Duration) time.Duration {
	return envParse(e, name, def, time.ParseDuration, "a duration such as 50ms, 2s or 4320h")
}

// Float is name as a decimal number, or def when name is not set.
func (e *envVars) Float(name string, def float64) float64 {
	return envParse(e, name, def, func(s string) (float64, error) {
		return strconv.ParseFloat(s, 64)
	}, "a number")
}

// Err is every variable read so far that did not parse, one per line, or
// nil.
func (e *envVars) Err() error {
	return errors.Join(e.errs...)
}

// envParse is the variable name parsed by parse, or def when it is not set.
// A value that does not parse is recorded in e, naming the variable, the
// value and want, and def is returned.
func envParse[T any](e *envVars, name string, def T, parse func(string) (T, error), want string) T {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	x, err := parse(strings.TrimSpace(v))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s %q: want %s", name, v, want))
		return def
	}
	return x
}

// Serving
//
// serve opens the store, wires the engine, the HTTP server and the admin
// API on it, and runs until SIGINT or SIGTERM, then shuts down in order:
// stop accepting, drain, stop backtests, close the store.

func serve(args []string, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
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

	store := features.New(features.Options{
		Dir: c.DataDir, SyncWrites: c.SyncWrites, FlushInterval: c.FlushInterval,
		CacheEntries: c.CacheEntries, Retention: c.Retention, CompileFilter: compileFilter, Log: log,
		LimitsEntity: c.LimitsEntity,
	})
	if err := store.Open(ctx); err != nil {
		return err
	}
	closeStore := func() {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := store.Close(cctx); err != nil {
			log.Error("close store", "err", err)
		}
	}
	app, err := wire(ctx, c, store, log)
	if err != nil {
		closeStore()
		return err
	}
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
	log.Info("serving", "addr", ln.Addr().String(), "data", c.DataDir, "ruleset_version", app.engine.Rules().Version())
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
}

// wire loads definitions, lists and the live rule set, and builds the
// engine and the HTTP server on an open store.
func wire(ctx context.Context, c config, store *features.Store, log *slog.Logger) (*app, error) {
	lists := features.NewLists(store.DB(), nil)
	if err := lists.Load(); err != nil {
		return nil, err
	}
	if err := loadFeatures(ctx, c.FeaturesFile, store); err != nil {
		return nil, err
	}
	// One audit trail instance for every writer: it numbers entries in
	// memory. Pass it to admin.New as Config.Audit.
	audit := admin.NewAudit(store.DB(), nil)
	limiter, err := features.NewLimiter(store, features.LimiterOptions{
		Compile: compilePaymentPredicate, Lists: lists, Audit: admin.LimitsAudit(audit),
	})
	if err != nil {
		return nil, err
	}
	if err := limiter.Load(ctx); err != nil {
		return nil, err
	}
	metrics := server.NewMetrics(server.MetricsConfig{StoreStats: storeStats(store)})
	eng := engine.New(engine.Config{
		Store: metrics.TimeStore(store), Features: metrics.TimeFeatures(store), Limiter: limiter, Labels: store, Trust: limiter,
		Budget: c.Budget, Fallback: engine.Outcome(c.Fallback), FallbackByMerchant: c.FallbackByMerchant,
		Observer: metrics, Log: log,
	})
	versions := admin.NewVersions(store.DB(), nil)
	env := rules.Env{Features: featureNames(store), Lists: lists}
	if err := loadRules(c.RulesFile, versions, lists, env, eng); err != nil {
		return nil, err
	}
	keys := admin.NewKeys(store.DB(), audit, nil)
	if err := keys.Load(); err != nil {
		return nil, err
	}
	var auth server.Authenticator = keys
	if c.Dev {
		auth = nil // dev mode: every request is the admin "dev"
	}
	srv := server.New(server.Config{
		Engine: eng, Decisions: store, Feedback: eng, Log: log, Auth: auth, Metrics: metrics,
		RateLimit: server.RateLimit{PerSecond: c.RateLimit, Burst: c.RateBurst},
		Ready: func() error {
			if eng.Rules() == nil {
				return errors.New("no rule set loaded")
			}
			return nil
		},
	})
	// The analysts' API: draft rules, publish and versions, lists,
	// features and the audit trail (docs/admin-api.md).
	api := admin.New(admin.Config{
		DB: store.DB(), Engine: eng, Versions: versions, Lists: lists, Features: store, Audit: audit, Log: log,
	})
	if err := api.Load(); err != nil {
		return nil, err
	}
	api.Register(srv.Group("/admin"), srv.Require)
	// Backtests replay the decision log through a candidate rule set; they
	// run in the background, one at a time, and are stopped before the
	// store closes.
	backtests := backtest.New(backtest.Config{
		History: store, Versions: versions, Draft: api.Draft, Log: log,
		Env: func() rules.Env { return rules.Env{Features: featureNames(store), Lists: lists} },
	})
	backtest.Register(srv.Group("/admin"), srv.Require, backtests)
	admin.RegisterLimits(srv.Group("/admin"), srv.Require, limiter)
	admin.RegisterStats(srv.Group("/admin"), srv.Require, store, nil)
	keys.Register(srv.Group("/admin"), srv.Require)
	admin.RegisterBackup(srv.Group("/admin"), srv.Require, store, audit, log)
	reviews, err := wireReview(ctx, c, store, eng, lists, audit, srv, log)
	if err != nil {
		return nil, err
	}
	return &app{engine: eng, server: srv, backtests: backtests, keys: keys, reviews: reviews}, nil
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
			LSMBytes: s.LSMBytes, VLogBytes: s.VLogBytes, LastSeq: s.LastSeq,
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
func compilePaymentPredicate(src string) (features.PaymentPredicate, error) {
	p, err := rules.CompilePaymentPredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// featureNames are the names of the store's feature definitions, the
// feature environment rules compile against.
func featureNames(store *features.Store) []string {
	defs := store.Definitions()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return names
}

// loadFeatures applies the feature file, or the sample on first start.
func loadFeatures(ctx context.Context, file string, store *features.Store) error {
	var data []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read features: %w", err)
		}
		data = b
	case !store.HasStoredDefinitions():
		data = features.Sample()
	default:
		return nil
	}
	defs, err := features.ParseDefinitions(data)
	if err != nil {
		return err
	}
	return store.SetDefinitions(ctx, defs)
}

// loadRules makes a rule set live: the file's when given (published as a
// new version when it differs from the latest), else the latest published
// version, else the bundled sample.
func loadRules(file string, versions *admin.Versions, lists *features.Lists, env rules.Env, eng *engine.Engine) error {
	latest, err := versions.Latest()
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	data, source := rules.Sample(), "bundled sample"
	switch {
	case file != "":
		if data, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("read rules: %w", err)
		}
		source = file
	case err == nil:
		set, cerr := rules.Compile(latest.Spec, env, latest.Number)
		if cerr != nil {
			return fmt.Errorf("compile live rule set version %d: %w", latest.Number, cerr)
		}
		eng.SetRules(set)
		return nil
	}
	f, err := rules.ParseFile(data)
	if err != nil {
		return err
	}
	for _, l := range f.Lists {
		if _, err := lists.Get(l.Name); err == nil {
			continue // never overwrite a list analysts manage
		}
		if _, err := lists.Put(features.List{Name: l.Name, Kind: l.Kind, Author: "startup"}); err != nil {
			return fmt.Errorf("seed list %q: %w", l.Name, err)
		}
		items := make([]features.Item, len(l.Items))
		for i, v := range l.Items {
			items[i] = features.Item{Value: v, Reason: "seeded from " + source, Author: "startup"}
		}
		if len(items) > 0 {
			if _, err := lists.AddItems(l.Name, items); err != nil {
				return fmt.Errorf("seed list %q: %w", l.Name, err)
			}
		}
	}
	if latest.Number > 0 && latest.Hash == specHash(f.Spec, env) {
		set, err := rules.Compile(latest.Spec, env, latest.Number)
		if err != nil {
			return err
		}
		eng.SetRules(set)
		return nil
	}
	_, err = versions.Publish(f.Spec, env, "startup", "loaded from "+source, func(s *rules.Set) { eng.SetRules(s) })
	return err
}

// specHash is the hash a spec would be published with.
func specHash(spec rules.Spec, env rules.Env) string {
	set, err := rules.Compile(spec, env, 0)
	if err != nil {
		return ""
	}
	s := set.Spec()
	return s.Hash()
}

// Subcommands
//
// risk rules validate, backup, restore and keys generate. loadgen and
// replay live in their packages (server/loadgen, admin/backtest).

// rulesCommand is `risk rules validate FILE`.
func rulesCommand(args []string, stdout io.Writer) error {
	usage := fmt.Errorf("usage: risk rules validate FILE [--features FILE]")
	if len(args) == 0 || args[0] != "validate" {
		return usage
	}
	var file, featuresFile string
	for rest := args[1:]; len(rest) > 0; rest = rest[1:] {
		switch a := rest[0]; {
		case a == "--features" || a == "-features":
			if len(rest) < 2 {
				return usage
			}
			featuresFile, rest = rest[1], rest[1:]
		case strings.HasPrefix(a, "--features="):
			featuresFile = strings.TrimPrefix(a, "--features=")
		case file == "" && !strings.HasPrefix(a, "-"):
			file = a
		default:
			return usage
		}
	}
	if file == "" {
		return usage
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defsData := features.Sample()
	if featuresFile != "" {
		if defsData, err = os.ReadFile(featuresFile); err != nil {
			return err
		}
	}
	defs, err := features.ParseDefinitions(defsData)
	if err != nil {
		return err
	}
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	// The same check, and so the same errors, as POST /admin/ruleset/import.
	f, err := admin.CheckFile(data, rules.Env{Features: names})
	var ce *rules.CompileError
	if errors.As(err, &ce) {
		for _, e := range ce.Errors {
			fmt.Fprintf(stdout, "%s: %s\n", file, e.Error())
		}
		return fmt.Errorf("%d error(s)", len(ce.Errors))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d rules, valid\n", file, len(f.Rules))
	return nil
}

// isOpsCommand reports whether name is one of the operations subcommands:
// backup, restore and keys.
func isOpsCommand(name string) bool {
	return name == "backup" || name == "restore" || name == "keys"
}

// opsCommand runs `risk backup|restore|keys ...`.
func opsCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "backup":
		return backupCommand(ctx, args[1:], stdout, stderr)
	case "restore":
		return restoreCommand(ctx, args[1:], stdout, stderr)
	default:
		return keysCommand(args[1:], stdout)
	}
}

// backupCommand is `risk backup --out FILE (--target URL | --data DIR)`.
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (required)")
	target := fs.String("target", env("RISK_TARGET", ""), "base URL of a running server to back up online; without --target and --data, the server at RISK_ADDR on this machine (default http://127.0.0.1:8080) [RISK_TARGET]")
	key := fs.String("key", env("RISK_API_KEY", env("RISK_ADMIN_KEY", "")), "admin API key for --target; prefer the environment variable [RISK_API_KEY, else RISK_ADMIN_KEY]")
	dir := fs.String("data", "", "data directory of a stopped server to back up offline")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk backup --out FILE [--target URL]  online, from a running server (admin key)\n"+
			"       risk backup --out FILE --data DIR     offline, from a stopped server's data directory\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" && *dir == "" {
		*target = localURL(env("RISK_ADDR", ":8080"))
	}
	switch {
	case *out == "":
		return errors.New("backup: --out is required")
	case *target != "" && *dir != "":
		return errors.New("backup: give one of --target (online) and --data (offline), not both")
	case fs.NArg() > 0:
		return fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	// Write beside the destination and rename once complete and verified,
	// so FILE is never a partial backup.
	tmp, err := os.CreateTemp(dirOf(*out), ".risk-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if *target != "" {
		err = downloadBackup(ctx, *target, *key, tmp)
	} else {
		_, err = features.BackupDir(ctx, *dir, tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	version, err := features.VerifyBackup(tmp)
	if err != nil {
		return fmt.Errorf("backup: the copy is not complete: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of version %d written to %s\n", version, *out)
	return nil
}

// localURL is the URL of a server listening on addr on this machine.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// downloadBackup streams GET /admin/backup of target into w.
func downloadBackup(ctx context.Context, target, key string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/admin/backup", nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("backup: %s answered %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("backup: download: %w", err)
	}
	return nil
}

// dirOf is the directory part of path, with its trailing separator, or
// "." for a bare file name.
func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// restoreCommand is `risk restore --data DIR FILE`.
func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", env("RISK_DATA_DIR", "./data"), "new data directory to restore into; it must not exist or be empty [RISK_DATA_DIR]")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk restore [--data DIR] FILE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		fs.Usage()
		return errors.New("restore: want one backup FILE (and --data DIR)")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	version, err := features.Restore(ctx, *dir, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored version %d into %s; start the server with --data %s\n", version, *dir, *dir)
	return nil
}

// keysCommand is `risk keys generate`: it prints a new random key, for
// RISK_ADMIN_KEY.
func keysCommand(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "generate" {
		return errors.New("usage: risk keys generate")
	}
	fmt.Fprintln(stdout, admin.GenerateKey())
	return nil
}
