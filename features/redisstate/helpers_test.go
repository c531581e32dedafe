package redisstate_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/featurestest"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/features/redisstate"
	"github.com/riskengine/risk/features/redisstate/redistest"
)

var compileFilter = featurestest.CompileFilter

// counter counts the round trips a client makes: one per command sent
// alone, one per pipeline.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// newClient connects to the test Redis (a Cluster when addrs has several),
// or skips the test when there is none (fails it when CI=true). Each call
// is a separate client: a separate node.
func newClient(tb testing.TB, addrs ...string) (redis.UniversalClient, *counter) {
	tb.Helper()
	if len(addrs) == 0 {
		addrs = []string{redistest.Addr(tb)}
	}
	opts := redisstate.ClientOptions(addrs...)
	if len(addrs) > 1 {
		opts.IsClusterMode = true
	}
	c := redis.NewUniversalClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %v unreachable: %v", addrs, err)
		}
		tb.Skipf("redis at %v unreachable (set RISK_TEST_REDIS_URL): %v", addrs, err)
	}
	n := &counter{}
	c.AddHook(n)
	return c, n
}

// newPrefix returns a key prefix of the test's own and deletes its keys at
// the end.
func newPrefix(tb testing.TB, c redis.UniversalClient) string {
	tb.Helper()
	var b [6]byte
	_, _ = crand.Read(b[:])
	name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	prefix := "test:" + name + ":" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { _ = redistest.DeleteKeys(c, prefix) })
	return prefix
}

func newState(tb testing.TB, c redis.UniversalClient, prefix string, defs []features.Definition, opts ...func(*redisstate.Options)) *redisstate.Store {
	tb.Helper()
	// Generous timeouts: a loaded test machine must not fail a test that
	// is not about them.
	o := redisstate.Options{
		Prefix: prefix, Definitions: defs, CompileFilter: compileFilter, LimitsEntity: limits.EntityAccount,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	s, err := redisstate.New(c, o)
	if err != nil {
		tb.Fatalf("new redis state: %v", err)
	}
	return s
}

// noHistory is an empty decision log.
type noHistory struct{}

func (noHistory) ScanRecords(context.Context, uint64, func(*engine.Record) error) error { return nil }

// built marks the state built from an empty log, as a new cluster does.
func built(tb testing.TB, s *redisstate.Store) {
	tb.Helper()
	if err := s.Rebuild(context.Background(), noHistory{}, nil); err != nil {
		tb.Fatalf("rebuild: %v", err)
	}
	if !s.Ready() {
		tb.Fatal("not ready after a rebuild")
	}
}

// openStore opens a Badger features.Store in a temporary directory: the
// single-node oracle. A backfill counts only the decisions within a
// window of now, so a test comparing it with a Rebuild at a fixed time
// passes that time as now.
func openStore(tb testing.TB, defs []features.Definition, now ...time.Time) *features.Store {
	tb.Helper()
	o := features.Options{LimitsEntity: limits.EntityAccount}
	if len(now) > 0 {
		o.Now = func() time.Time { return now[0] }
	}
	return featurestest.Open(tb, o, defs)
}

// record builds a decided payment with limits in USD, so the daily spend
// counts it.
func record(p engine.Payment, outcome engine.Outcome) *engine.Record {
	if p.Currency == "" {
		p.Currency = "USD"
	}
	if p.Amount == 0 {
		p.Amount = 100
	}
	rec := &engine.Record{Payment: p, RequestHash: p.ContentHash()}
	rec.ID = engine.DecisionID(p.TransactionID)
	rec.TransactionID = p.TransactionID
	rec.Outcome = outcome
	rec.EvaluatedAt = p.OccurredAt
	if p.Account.ID != "" {
		rec.Limits = engine.Limits{Entity: "account:" + p.Account.ID, Currency: p.Currency, BaseCurrency: "USD", Rate: 1}
	}
	return rec
}

// mixedDefs covers every aggregate, where filters, several entities and a
// composite one.
var mixedDefs = []features.Definition{
	{Name: "card_n_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"},
	{Name: "card_denies_24h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h", Where: `decision == "deny"`},
	{Name: "card_devices_24h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Distinct, Field: "device.id", Window: "24h"},
	{Name: "card_first_7d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.FirstSeen, Window: "7d"},
	{Name: "acct_sum_24h", Entity: features.Paths{"account.id"}, Aggregate: features.Sum, Field: "amount", Window: "24h"},
	{Name: "acct_last_1h", Entity: features.Paths{"account.id"}, Aggregate: features.LastSeen, Window: "1h"},
	{Name: "acct_merch_avg_2h", Entity: features.Paths{"account.id", "merchant.id"}, Aggregate: features.Avg, Field: "amount", Window: "2h"},
	{Name: "acct_merch_max_2h", Entity: features.Paths{"account.id", "merchant.id"}, Aggregate: features.Max, Field: "amount", Window: "2h"},
	{Name: "device_min_30m", Entity: features.Paths{"device.id"}, Aggregate: features.Min, Field: "amount", Window: "30m"},
	{Name: "web_card_10m", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "10m", Where: `attributes.channel == "web"`},
}

// mixedStream returns n decided payments over the six hours before now, in
// time order but for a few late arrivals; tag makes the transaction ids
// the test's own.
func mixedStream(n int, now time.Time, tag string) []*engine.Record {
	r := rand.New(rand.NewPCG(7, 11))
	at := now.Add(-6 * time.Hour)
	outcomes := []engine.Outcome{engine.Allow, engine.Allow, engine.Challenge, engine.Deny}
	var out []*engine.Record
	for i := range n {
		at = at.Add(time.Duration(r.IntN(int(6*time.Hour/time.Second)/n*2)) * time.Second)
		when := at
		if i%17 == 0 {
			when = at.Add(-time.Duration(r.IntN(1800)) * time.Second) // a late arrival
		}
		p := engine.Payment{
			TransactionID: fmt.Sprintf("tx_%s_%d", tag, i),
			OccurredAt:    when,
			Amount:        int64(100 + r.IntN(5000)),
			Account:       engine.Account{ID: fmt.Sprintf("acc_%d", r.IntN(4))},
			Card:          engine.Card{Fingerprint: fmt.Sprintf("fp_%d", r.IntN(5))},
			Device:        engine.Device{ID: fmt.Sprintf("dev_%d", r.IntN(8))},
			Merchant:      engine.Merchant{ID: fmt.Sprintf("m_%d", r.IntN(3))},
		}
		if r.IntN(2) == 0 {
			p.Attributes = map[string]any{"channel": "web"}
		}
		if r.IntN(10) == 0 {
			p.Device.ID = "" // an absent entity
		}
		out = append(out, record(p, outcomes[r.IntN(len(outcomes))]))
	}
	return out
}

// values reads every feature for p.
func values(tb testing.TB, s engine.FeatureSource, p engine.Payment) []engine.FeatureValue {
	tb.Helper()
	vals, err := s.Features(context.Background(), &p, nil)
	if err != nil {
		tb.Fatalf("features: %v", err)
	}
	return vals
}

// value reads one feature for p.
func value(tb testing.TB, s engine.FeatureSource, p engine.Payment, name string) engine.FeatureValue {
	tb.Helper()
	for _, v := range values(tb, s, p) {
		if v.Name == name {
			return v
		}
	}
	tb.Fatalf("feature %s not found", name)
	return engine.FeatureValue{}
}

// closedAddr returns an address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silentAddr returns the address of a server that accepts connections and
// never answers: a Redis that hangs.
func silentAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(done)
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	tb.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
