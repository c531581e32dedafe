package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Defaults for the load-run flags.
const (
	DefaultRate        = 1000.0
	DefaultDuration    = 30 * time.Second
	DefaultWorkers     = 512
	DefaultSeed        = 1
	DefaultAccounts    = 100000
	DefaultRetryRatio  = 0.01
	DefaultAttackRatio = 0.02
	DefaultTimeout     = 2 * time.Second
)

// KeyEnv is the environment variable read for the API key when --key is empty.
const KeyEnv = "RISK_API_KEY"

// Config describes one load run. Build it with DefaultConfig and check it with
// Validate; the zero value is not valid.
type Config struct {
	// Target is the base URL of the service, e.g. http://127.0.0.1:8080.
	// Requests go to Target + "/v1/decisions" and nowhere else: no proxy, no
	// redirect. Only plain http is supported; https is refused.
	Target string
	// Rate is the intended request rate in requests per second.
	Rate float64
	// Duration is how long new requests are scheduled. The run then waits at
	// most Timeout for requests still in flight.
	Duration time.Duration
	// Key, when non-empty, is sent as "Authorization: Bearer <Key>".
	Key string
	// Out, when non-empty, is the file the JSON report is written to.
	Out string
	// Workers is the most requests in flight at once. A request due while
	// all workers are busy waits, and the wait counts in its latency.
	Workers int
	// Seed makes the traffic deterministic.
	Seed int64
	// Accounts is the number of distinct customer accounts.
	Accounts int
	// RetryRatio is the share of requests, in [0, 1], that resend an earlier
	// transaction with a byte-identical body.
	RetryRatio float64
	// AttackRatio is the share of requests, in [0, 1], that belong to
	// card-testing bursts.
	AttackRatio float64
	// Timeout bounds each request, from the moment it is sent.
	Timeout time.Duration
}

// DefaultConfig returns a Config holding the defaults and no Target.
func DefaultConfig() Config {
	return Config{
		Rate:        DefaultRate,
		Duration:    DefaultDuration,
		Workers:     DefaultWorkers,
		Seed:        DefaultSeed,
		Accounts:    DefaultAccounts,
		RetryRatio:  DefaultRetryRatio,
		AttackRatio: DefaultAttackRatio,
		Timeout:     DefaultTimeout,
	}
}

// Validate reports the first field of c that cannot drive a run.
func (c Config) Validate() error {
	u, err := url.Parse(c.Target)
	switch {
	case c.Target == "":
		return errors.New("--target is required")
	case err != nil:
		return fmt.Errorf("--target: %w", err)
	case u.Scheme == "https":
		return fmt.Errorf("--target %q: https is not supported, want an http base URL", c.Target)
	case u.Scheme != "http", u.Host == "":
		return fmt.Errorf("--target %q: want an http base URL", c.Target)
	case strings.ContainsFunc(c.Key, isControl):
		return errors.New("--key: contains a control character")
	case !(c.Rate > 0):
		return fmt.Errorf("--rate %v: must be positive", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", c.Duration)
	case c.Workers < 1:
		return fmt.Errorf("--workers %d: must be at least 1", c.Workers)
	case c.Accounts < 1:
		return fmt.Errorf("--accounts %d: must be at least 1", c.Accounts)
	case !(c.RetryRatio >= 0 && c.RetryRatio <= 1):
		return fmt.Errorf("--retry-ratio %v: must be in [0, 1]", c.RetryRatio)
	case !(c.AttackRatio >= 0 && c.AttackRatio <= 1):
		return fmt.Errorf("--attack-ratio %v: must be in [0, 1]", c.AttackRatio)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout %v: must be positive", c.Timeout)
	}
	return nil
}

// parseConfig reads the load-run flags. getenv supplies the key fallback.
func parseConfig(args []string, out io.Writer, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: risk loadgen --target URL [flags]\n       risk loadgen plot [--out latency.png] report.json...")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Target, "target", "", "base `URL` of the decision service (required)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "intended requests per second")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to schedule requests")
	fs.StringVar(&c.Key, "key", "", "API key sent as a bearer token (default $"+KeyEnv+")")
	fs.StringVar(&c.Out, "out", "", "write the JSON report to this `file`")
	fs.IntVar(&c.Workers, "workers", c.Workers, "most requests in flight at once")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed for deterministic traffic")
	fs.IntVar(&c.Accounts, "accounts", c.Accounts, "number of distinct accounts")
	fs.Float64Var(&c.RetryRatio, "retry-ratio", c.RetryRatio, "share of requests that resend an earlier transaction")
	fs.Float64Var(&c.AttackRatio, "attack-ratio", c.AttackRatio, "share of requests in card-testing bursts")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Key == "" {
		c.Key = getenv(KeyEnv)
	}
	return c, c.Validate()
}

// isControl reports whether r cannot appear in an HTTP header value.
func isControl(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }
