package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// The serve configuration: flags, each with an environment variable as
// its default, parsed and validated once here and passed down as plain
// values.

// Defaults of the serve flags.
const (
	defaultAddr     = ":8080"
	defaultDataDir  = "./data"
	shutdownTimeout = 15 * time.Second
	// readyTimeout bounds the store checks of one /readyz.
	readyTimeout = 2 * time.Second
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
	Notify             notifyConfig
	Cluster            clusterConfig
	// Version is --version: print the build and exit; nothing else is
	// parsed or validated.
	Version bool
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
			"       risk keys generate       print a new random API key\n"+
			"       risk cluster --help      cluster mode: import a node's history, verify, rebuild features\n"+
			"       risk version             print the version, commit and Go version\n\nFlags (environment variable in brackets):\n")
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
	notifyFlags(fs, &c.Notify, &ev)
	clusterFlags(fs, &c.Cluster)
	fs.BoolVar(&c.Version, "version", false, "print the version, commit and Go version, and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Version {
		return c, nil
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
	case c.Review.validate() != nil:
		return c.Review.validate()
	case c.Notify.validate() != nil:
		return c.Notify.validate()
	case c.Cluster.validate() != nil:
		return c.Cluster.validate()
	case c.DataDir == "":
		return fmt.Errorf("--data is required")
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
