package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/redisstate"
)

var cardDefs = []features.Definition{
	{Name: "card_n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h"},
	{Name: "card_sum", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Sum, Field: "amount", Window: "24h"},
	{Name: "acct_n", Entity: features.Paths{"account.id"}, Aggregate: features.Count, Window: "1h"},
}

// nodes returns n Stores on separate clients of one Redis (or of the
// Cluster at addrs), sharing a prefix, built.
func nodes(t *testing.T, n int, defs []features.Definition, addrs ...string) []*redisstate.Store {
	t.Helper()
	var out []*redisstate.Store
	var prefix string
	for i := range n {
		c, _ := newClient(t, addrs...)
		if i == 0 {
			prefix = newPrefix(t, c)
		}
		out = append(out, newState(t, c, prefix, defs))
	}
	built(t, out[0])
	return out
}

func TestConcurrentRecordsOnThreeNodes(t *testing.T) {
	testConcurrentRecords(t)
}

func TestCluster(t *testing.T) {
	env := os.Getenv("RISK_TEST_REDIS_CLUSTER")
	if env == "" {
		t.Skip("set RISK_TEST_REDIS_CLUSTER=host:port,... to test against a Redis Cluster")
	}
	addrs := strings.Split(env, ",")
	if len(addrs) == 1 {
		addrs = append(addrs, addrs[0]) // several addresses select the cluster client
	}
	testConcurrentRecords(t, addrs...)
	t.Run("mixed stream", func(t *testing.T) {
		c, _ := newClient(t, addrs...)
		testMatchesStore(t, newState(t, c, newPrefix(t, c), mixedDefs))
	})
	t.Run("rebuild", func(t *testing.T) { testRebuild(t, addrs...) })
	t.Run("braces", func(t *testing.T) { testBraces(t, addrs...) })
}

// testConcurrentRecords records 200 distinct transactions on one card over
// three nodes at once, then each transaction of another 50 on all three
// nodes at once, and expects every node to count each transaction once.
func testConcurrentRecords(t *testing.T, addrs ...string) {
	ns := nodes(t, 3, cardDefs, addrs...)
	now := time.Now().UTC()
	pay := func(i int) engine.Payment {
		return engine.Payment{
			TransactionID: fmt.Sprintf("tx_%d", i), OccurredAt: now, Amount: 10,
			Card: engine.Card{Fingerprint: "hot"}, Account: engine.Account{ID: fmt.Sprintf("acc_%d", i%7)},
		}
	}
	ctx := context.Background()
	run := func(first, n, copies int) {
		var wg sync.WaitGroup
		errs := make(chan error, n*copies)
		for i := first; i < first+n; i++ {
			for c := range copies {
				node := ns[(i+c)%len(ns)]
				rec := record(pay(i), engine.Allow)
				wg.Go(func() {
					if err := node.Record(ctx, rec); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("record: %v", err)
		}
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "hot"}}

	t.Run("distinct transactions", func(t *testing.T) {
		run(0, 200, 1)
		for i, n := range ns {
			if v := value(t, n, probe, "card_n"); v.Value != 200 || !v.Ready {
				t.Errorf("node %d: card_n = %+v, want 200, ready", i, v)
			}
			if v := value(t, n, probe, "card_sum"); v.Value != 2000 {
				t.Errorf("node %d: card_sum = %v, want 2000", i, v.Value)
			}
		}
	})
	t.Run("same transaction on every node", func(t *testing.T) {
		run(200, 50, 3)
		for i, n := range ns {
			if v := value(t, n, probe, "card_n"); v.Value != 250 {
				t.Errorf("node %d: card_n = %v, want 250", i, v.Value)
			}
		}
		// A retry on another node, within the card's last 64 decisions,
		// still counts nothing.
		if err := ns[2].Record(ctx, record(pay(200), engine.Allow)); err != nil {
			t.Fatal(err)
		}
		if v := value(t, ns[1], probe, "card_n"); v.Value != 250 {
			t.Errorf("after a retry: card_n = %v, want 250", v.Value)
		}
		// One behind more than 64 later decisions of the card is counted
		// again, as the package doc says: the card's state no longer
		// remembers it.
		if err := ns[2].Record(ctx, record(pay(0), engine.Allow)); err != nil {
			t.Fatal(err)
		}
		if v := value(t, ns[1], probe, "card_n"); v.Value != 251 {
			t.Errorf("after a retry beyond the ring: card_n = %v, want 251", v.Value)
		}
		acct := engine.Payment{OccurredAt: probe.OccurredAt, Account: engine.Account{ID: "acc_3"}}
		if v := value(t, ns[0], acct, "acct_n"); v.Value != 36 { // 3, 10, ..., 248 within 0..249
			t.Errorf("acct_3: acct_n = %v, want 36", v.Value)
		}
	})
}

func TestMatchesBadgerStore(t *testing.T) {
	c, _ := newClient(t)
	testMatchesStore(t, newState(t, c, newPrefix(t, c), mixedDefs))
}

// testMatchesStore feeds one stream to s and to a Badger Store and expects
// the same values before every decision, and the same daily spend.
func testMatchesStore(t *testing.T, s *redisstate.Store) {
	built(t, s)
	oracle := openStore(t, mixedDefs)
	ctx := context.Background()
	for i, rec := range mixedStream(300, time.Now().UTC(), t.Name()) {
		want := values(t, oracle, rec.Payment)
		got := values(t, s, rec.Payment)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("payment %d: redis gave\n%v\nbadger gave\n%v", i, got, want)
		}
		if i%10 == 0 {
			spent, err := s.Spent(ctx, &rec.Payment)
			if err != nil {
				t.Fatal(err)
			}
			if want := spentBefore(oracle, rec); math.Abs(spent-want) > 1e-6 {
				t.Fatalf("payment %d: spent %v, want %v", i, spent, want)
			}
		}
		if err := oracle.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
}

// spentBefore sums what rec's account spent (not denied) in the 24 hours
// up to rec, from the oracle's log.
func spentBefore(oracle *features.Store, rec *engine.Record) float64 {
	var sum float64
	from := rec.Payment.OccurredAt.Add(-24 * time.Hour)
	_ = oracle.ScanRecords(context.Background(), 1, func(r *engine.Record) error {
		p := r.Payment
		if p.Account.ID == rec.Payment.Account.ID && r.Outcome != engine.Deny && !p.OccurredAt.After(rec.Payment.OccurredAt) && !p.OccurredAt.Before(from) {
			sum += float64(p.Amount)
		}
		return nil
	})
	return sum
}

func TestRoundTrips(t *testing.T) {
	c, rt := newClient(t)
	s := newState(t, c, newPrefix(t, c), mixedDefs)
	built(t, s)
	ctx := context.Background()
	p := engine.Payment{TransactionID: "tx_rt", OccurredAt: time.Now(), Account: engine.Account{ID: "a"}, Card: engine.Card{Fingerprint: "f"}, Merchant: engine.Merchant{ID: "m"}, Device: engine.Device{ID: "d"}}
	// Load the script, as any first write on a new server does.
	if err := s.Record(ctx, record(engine.Payment{TransactionID: "tx_warm", OccurredAt: p.OccurredAt, Card: engine.Card{Fingerprint: "g"}}, engine.Allow)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		call func() error
		want int64
	}{
		{"features", func() error { _, err := s.Features(ctx, &p, nil); return err }, 1},
		{"record", func() error { return s.Record(ctx, record(p, engine.Allow)) }, 2},
		{"record again", func() error { return s.Record(ctx, record(p, engine.Allow)) }, 1}, // reads, finds it counted
	} {
		before := rt.n.Load()
		if err := tt.call(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := rt.n.Load() - before; got != tt.want {
			t.Errorf("%s: %d round trips, want %d", tt.name, got, tt.want)
		}
	}
}

// TestDecisionRoundTrips: a decision as the engine makes it — features,
// then limits' daily spend, then the record of the same payment — costs
// two round trips: the read, and the compare-and-set, which starts from
// what the features read.
func TestDecisionRoundTrips(t *testing.T) {
	c, rt := newClient(t)
	s := newState(t, c, newPrefix(t, c), mixedDefs)
	built(t, s)
	ctx := context.Background()
	// Load the script, as any first write on a new server does.
	if err := s.Record(ctx, record(engine.Payment{TransactionID: "tx_warm", OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "g"}}, engine.Allow)); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int64{2, 2, 2} {
		p := engine.Payment{TransactionID: fmt.Sprintf("tx_d%d", i), OccurredAt: time.Now(), Amount: 100, Currency: "USD",
			Account: engine.Account{ID: "a"}, Card: engine.Card{Fingerprint: "f"}, Merchant: engine.Merchant{ID: "m"}, Device: engine.Device{ID: "d"}}
		rec := record(p, engine.Allow)
		before := rt.n.Load()
		vals, err := s.Features(ctx, &rec.Payment, nil)
		if err != nil {
			t.Fatal(err)
		}
		spent, err := s.Spent(ctx, &rec.Payment)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if got := rt.n.Load() - before; got != n {
			t.Errorf("decision %d: %d round trips, want %d", i, got, n)
		}
		if want := float64(100 * i); spent != want {
			t.Errorf("decision %d: spent %v, want %v (the earlier decisions)", i, spent, want)
		}
		if len(vals) == 0 {
			t.Fatal("no feature values")
		}
	}
}

func TestRedisDown(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr string
	}{
		{"closed port", closedAddr(t)},
		{"server that never answers", silentAddr(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := redis.NewUniversalClient(redisstate.ClientOptions(tt.addr))
			t.Cleanup(func() { _ = c.Close() })
			s := newState(t, c, "down", mixedDefs, func(o *redisstate.Options) {
				o.ReadTimeout, o.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
			})
			p := engine.Payment{TransactionID: "tx_down", OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "f"}, Account: engine.Account{ID: "a"}}
			vals, err := s.Features(context.Background(), &p, nil)
			if !errors.Is(err, engine.ErrUnavailable) {
				t.Errorf("features: err = %v, want ErrUnavailable", err)
			}
			if len(vals) != len(mixedDefs) {
				t.Fatalf("%d values, want %d", len(vals), len(mixedDefs))
			}
			for _, v := range vals {
				if v.Ready {
					t.Errorf("%s ready while redis is down", v.Name)
				}
			}
			if err := s.Record(context.Background(), record(p, engine.Allow)); !errors.Is(err, engine.ErrUnavailable) {
				t.Errorf("record: err = %v, want ErrUnavailable", err)
			}
			if _, err := s.Empty(context.Background()); err == nil {
				t.Error("empty: no error")
			}
			if s.Ready() {
				t.Error("Ready while redis is down")
			}
		})
	}
}

func TestRequestDeadlineIsNotUnavailable(t *testing.T) {
	c := redis.NewUniversalClient(redisstate.ClientOptions(silentAddr(t)))
	t.Cleanup(func() { _ = c.Close() })
	s := newState(t, c, "slow", cardDefs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := engine.Payment{OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "f"}}
	_, err := s.Features(ctx, &p, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("err = %v, want the request's own end", err)
	}
}

func TestCorruptState(t *testing.T) {
	c, _ := newClient(t)
	prefix := newPrefix(t, c)
	s := newState(t, c, prefix, mixedDefs)
	built(t, s)
	p := engine.Payment{TransactionID: "tx_c", OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "f"}, Account: engine.Account{ID: "a"}}
	if err := s.Record(context.Background(), record(p, engine.Allow)); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Calculator().Keys(&p, nil) {
		if strings.Contains(k.Key, "card.fingerprint") {
			if err := c.Set(context.Background(), "{"+prefix+":"+k.Key+"}:s", "\x00\x00\x00\x00\x00\x00\x00\x01garbage", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	vals, err := s.Features(context.Background(), &p, nil)
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	for _, v := range vals {
		card := strings.Contains(v.Name, "card")
		if v.Ready == card {
			t.Errorf("%s: ready = %v, want %v", v.Name, v.Ready, !card)
		}
		if v.Name == "acct_sum_24h" && v.Value != 100 {
			t.Errorf("acct_sum_24h = %v, want 100", v.Value)
		}
	}
	p.TransactionID = "tx_c2"
	if err := s.Record(context.Background(), record(p, engine.Allow)); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("record into a corrupt state: err = %v, want ErrCorrupt", err)
	}
	// The account's state is still counted; the card's is left for a rebuild.
	vals, _ = s.Features(context.Background(), &p, nil)
	for _, v := range vals {
		if v.Name == "acct_sum_24h" && v.Value != 200 {
			t.Errorf("after a record beside a corrupt state: acct_sum_24h = %v, want 200", v.Value)
		}
	}
}

func TestNewRefusesBadPrefix(t *testing.T) {
	for _, prefix := range []string{"", "a{b", "a}"} {
		if _, err := redisstate.New(nil, redisstate.Options{Prefix: prefix}); err == nil {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
}

func TestBracesInEntityValues(t *testing.T) { testBraces(t) }

// testBraces records on cards whose values hold braces and backslashes,
// which must neither end a hash tag early (a cross-slot script on a
// Cluster) nor let one card's keys spell another's: card i has i+1
// decisions.
func testBraces(t *testing.T, addrs ...string) {
	s := nodes(t, 1, cardDefs, addrs...)[0]
	ctx := context.Background()
	now := time.Now().UTC()
	cards := []string{"x", "x}:t:tx_b", "x}", "{x}", `x\)`, `x\`}
	for i, card := range cards {
		for n := range i + 1 {
			p := engine.Payment{TransactionID: fmt.Sprintf("tx_%d", n), OccurredAt: now, Card: engine.Card{Fingerprint: card}}
			if i == 0 {
				p.TransactionID = "tx_b}:s" // once spelt card 1's state key in a mark key; kept as a case
			}
			if err := s.Record(ctx, record(p, engine.Allow)); err != nil {
				t.Fatalf("record on %q: %v", card, err)
			}
		}
	}
	for i, card := range cards {
		p := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: card}}
		if v := value(t, s, p, "card_n"); v.Value != float64(i+1) || !v.Ready {
			t.Errorf("card %q: card_n = %+v, want %d", card, v, i+1)
		}
	}
}
