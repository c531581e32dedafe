package redisstate_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/redisstate"
)

// stateSizes returns the size of every key under prefix, by key.
func stateSizes(tb testing.TB, c redis.UniversalClient, prefix string) map[string]int64 {
	tb.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	it := c.Scan(ctx, 0, "{"+prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		n, err := c.MemoryUsage(ctx, it.Val()).Result()
		if err != nil {
			tb.Fatalf("memory usage of %q: %v", it.Val(), err)
		}
		out[it.Val()] = n
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestMemoryBound records 1,000 decisions on one card and account: Redis
// holds the same keys after 100 as after 1,000 (one per entity and group,
// and the built marks), and none of them grew.
func TestMemoryBound(t *testing.T) {
	c, _ := newClient(t)
	prefix := newPrefix(t, c)
	s := newState(t, c, prefix, cardDefs)
	built(t, s)
	ctx := context.Background()
	now := time.Now().UTC()
	pay := func(i int) engine.Payment {
		return engine.Payment{TransactionID: fmt.Sprintf("tx_%d", i), OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "f"}, Account: engine.Account{ID: "a"}}
	}
	var at100 map[string]int64
	for i := range 1000 {
		if err := s.Record(ctx, record(pay(i), engine.Allow)); err != nil {
			t.Fatal(err)
		}
		if i == 99 {
			at100 = stateSizes(t, c, prefix)
		}
	}
	at1000 := stateSizes(t, c, prefix)
	keys := func(m map[string]int64) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if got, want := keys(at1000), keys(at100); !slices.Equal(got, want) {
		t.Errorf("keys after 1000 decisions:\n%q\nafter 100:\n%q", got, want)
	}
	// The card's and the account's states, and the built marks.
	if len(at1000) != 3 {
		t.Errorf("%d keys, want 3: %q", len(at1000), keys(at1000))
	}
	for k, n := range at1000 {
		if n > at100[k] || n > 4096 {
			t.Errorf("%q: %d bytes after 1000 decisions, %d after 100; want no growth, at most 4096", k, n, at100[k])
		}
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "f"}}
	if v := value(t, s, probe, "card_n"); v.Value != 1000 {
		t.Errorf("card_n = %v, want 1000", v.Value)
	}
}

// TestPlainFormatStillReads writes a state as values were written before
// they carried counted transactions (an 8-byte version, then the
// Calculator's encoding): it reads, and a Record counts into it and
// writes the current format.
func TestPlainFormatStillReads(t *testing.T) {
	c, _ := newClient(t)
	prefix := newPrefix(t, c)
	s := newState(t, c, prefix, cardDefs)
	built(t, s)
	ctx := context.Background()
	now := time.Now().UTC()
	old := record(engine.Payment{TransactionID: "tx_old", OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "f"}}, engine.Allow)
	var card string
	for _, k := range s.Calculator().Keys(&old.Payment, nil) {
		if !strings.Contains(k.Key, "card.fingerprint") {
			continue
		}
		enc, _, err := s.Calculator().Apply(k, nil, old)
		if err != nil {
			t.Fatal(err)
		}
		card = "{" + prefix + ":" + k.Key + "}:s"
		v := binary.BigEndian.AppendUint64(nil, 41)
		if err := c.Set(ctx, card, append(v, enc...), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "f"}}
	if v := value(t, s, probe, "card_sum"); v.Value != 10 || !v.Ready {
		t.Fatalf("card_sum of the old state = %+v, want 10, ready", v)
	}
	next := record(engine.Payment{TransactionID: "tx_new", OccurredAt: now, Amount: 5, Card: engine.Card{Fingerprint: "f"}}, engine.Allow)
	for range 2 {
		if err := s.Record(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	if v := value(t, s, probe, "card_sum"); v.Value != 15 {
		t.Errorf("card_sum after a record = %v, want 15", v.Value)
	}
	v, err := c.Get(ctx, card).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := binary.BigEndian.Uint64(v), uint64(1)<<56|42; got != want {
		t.Errorf("header %#x, want %#x (format 1, version 42)", got, want)
	}
}

// TestLateLabelBeyondRing labels a decision after more than 64 later
// decisions of its card: only the label's effect is counted, not the
// decision again, and recording the labelled decision again counts
// nothing.
func TestLateLabelBeyondRing(t *testing.T) {
	s := nodes(t, 1, lateLabelDefs)[0]
	ctx := context.Background()
	now := time.Now().UTC()
	pay := func(i int) engine.Payment {
		return engine.Payment{TransactionID: fmt.Sprintf("tx_%d", i), OccurredAt: now, Card: engine.Card{Fingerprint: "f"}}
	}
	first := record(pay(0), engine.Allow)
	for i := range 100 {
		rec := first
		if i > 0 {
			rec = record(pay(i), engine.Allow)
		}
		if err := s.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	labelled := *first
	labelled.Labels = []engine.Label{{Label: "chargeback", CreatedAt: now}}
	for range 2 {
		if err := s.Record(ctx, &labelled); err != nil {
			t.Fatal(err)
		}
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "f"}}
	for name, want := range map[string]float64{"card_chargebacks_90d": 1, "card_bad_90d": 0, "card_n_90d": 100} {
		if v := value(t, s, probe, name); v.Value != want {
			t.Errorf("%s = %v, want %v", name, v.Value, want)
		}
	}
}

// failingHistory is a log that fails after n decisions.
type failingHistory struct {
	History redisstate.History
	n       int
}

var errCut = errors.New("connection cut")

func (h failingHistory) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	n := 0
	return h.History.ScanRecords(ctx, from, func(rec *engine.Record) error {
		if n++; n > h.n {
			return errCut
		}
		return fn(rec)
	})
}

// hotLog returns a Badger Store holding n decisions on one card over the
// n seconds before now.
func hotLog(t *testing.T, n int, now time.Time) *features.Store {
	t.Helper()
	oracle := openStore(t, cardDefs, now)
	for i := range n {
		p := engine.Payment{TransactionID: fmt.Sprintf("tx_%d", i), OccurredAt: now.Add(-time.Duration(n-i) * time.Second), Amount: 1, Card: engine.Card{Fingerprint: "hot"}}
		if err := oracle.Commit(context.Background(), record(p, engine.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	return oracle
}

// TestConcurrentRebuildsOnHotEntity runs a rebuild on two nodes at once
// over 1,200 decisions on one card: each is counted once.
func TestConcurrentRebuildsOnHotEntity(t *testing.T) {
	now := time.Now().UTC()
	oracle := hotLog(t, 1200, now)
	ns := make([]*redisstate.Store, 2)
	var prefix string
	for i := range ns {
		c, _ := newClient(t)
		if i == 0 {
			prefix = newPrefix(t, c)
		}
		ns[i] = newState(t, c, prefix, cardDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	}
	var wg sync.WaitGroup
	for _, s := range ns {
		wg.Go(func() {
			if err := s.Rebuild(context.Background(), oracle, nil); err != nil {
				t.Errorf("rebuild: %v", err)
			}
		})
	}
	wg.Wait()
	probe := engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "hot"}}
	if v := value(t, ns[1], probe, "card_n"); v.Value != 1200 {
		t.Errorf("card_n = %v, want 1200", v.Value)
	}
}

// TestRebuildResumesOnHotEntity fails a rebuild part way through 1,200
// decisions on one card, far more than a ring holds, and runs it again:
// each decision is counted once.
func TestRebuildResumesOnHotEntity(t *testing.T) {
	now := time.Now().UTC()
	oracle := hotLog(t, 1200, now)
	ctx := context.Background()
	c, _ := newClient(t)
	s := newState(t, c, newPrefix(t, c), cardDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	if err := s.Rebuild(ctx, failingHistory{History: oracle, n: 700}, nil); !errors.Is(err, errCut) {
		t.Fatalf("first rebuild: err = %v, want the cut", err)
	}
	if s.Ready() {
		t.Fatal("ready after a failed rebuild")
	}
	if err := s.Rebuild(ctx, oracle, nil); err != nil {
		t.Fatal(err)
	}
	probe := engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "hot"}}
	if got, want := values(t, s, probe), values(t, oracle, probe); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("redis gave\n%v\nbadger gave\n%v", got, want)
	}
	if v := value(t, s, probe, "card_n"); v.Value != 1200 {
		t.Errorf("card_n = %v, want 1200", v.Value)
	}
}
