package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/featurestest"
	"github.com/riskengine/risk/features/redisstate"
)

// probes are payments at now on the entities mixedStream uses.
func probes(now time.Time) []engine.Payment {
	var out []engine.Payment
	for i := range 5 {
		out = append(out, engine.Payment{
			OccurredAt: now,
			Account:    engine.Account{ID: fmt.Sprintf("acc_%d", i%4)},
			Card:       engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i)},
			Device:     engine.Device{ID: fmt.Sprintf("dev_%d", i)},
			Merchant:   engine.Merchant{ID: fmt.Sprintf("m_%d", i%3)},
		})
	}
	return out
}

// sameValues fails unless s and oracle give the same values for every
// probe, all ready.
func sameValues(t *testing.T, s *redisstate.Store, oracle engine.FeatureSource, ps []engine.Payment) {
	t.Helper()
	counted := 0
	for i, p := range ps {
		got, want := values(t, s, p), values(t, oracle, p)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("probe %d: redis gave\n%v\nbadger gave\n%v", i, got, want)
		}
		for _, v := range want {
			if v.Value > 0 {
				counted++
			}
		}
	}
	if counted < len(ps)*len(mixedDefs)/2 {
		t.Errorf("only %d values above zero: the probes miss the stream", counted)
	}
}

func TestRebuildReproducesValues(t *testing.T) { testRebuild(t) }

// testRebuild rebuilds from a Badger Store's log on the Redis at addrs
// (the local one when empty) and expects the Store's values.
func testRebuild(t *testing.T, addrs ...string) {
	now := time.Now().UTC()
	oracle, stream := committedStream(t, 300, now)
	ctx := context.Background()
	c, _ := newClient(t, addrs...)
	s := newState(t, c, newPrefix(t, c), mixedDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })

	empty, err := s.Empty(ctx)
	if err != nil || !empty {
		t.Fatalf("Empty = %v, %v before a rebuild; want true", empty, err)
	}
	if s.Ready() {
		t.Error("Ready before a rebuild")
	}
	for _, v := range values(t, s, probes(now)[0]) {
		if v.Ready {
			t.Errorf("%s ready before a rebuild", v.Name)
		}
	}

	var seen []int
	if err := s.Rebuild(ctx, oracle, func(done int) { seen = append(seen, done) }); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if !s.Ready() {
		t.Error("not Ready after a rebuild")
	}
	if len(seen) == 0 || seen[len(seen)-1] != len(stream) || !slices.IsSorted(seen) {
		t.Errorf("progress %v, want ascending to %d", seen, len(stream))
	}
	sameValues(t, s, oracle, probes(now))

	// A second node finds the state built; a second Rebuild changes nothing.
	c2, _ := newClient(t, addrs...)
	s2 := newState(t, c2, s.Prefix(), mixedDefs)
	if empty, err := s2.Empty(ctx); err != nil || empty {
		t.Errorf("second node: Empty = %v, %v; want false", empty, err)
	}
	if err := s2.Rebuild(ctx, oracle, nil); err != nil {
		t.Fatal(err)
	}
	sameValues(t, s2, oracle, probes(now))
}

func TestRebuildWithLiveRecords(t *testing.T) {
	// Decisions recorded live while a rebuild replays the log that holds
	// them are counted once.
	now := time.Now().UTC()
	oracle, stream := committedStream(t, 200, now)
	ctx := context.Background()
	c, _ := newClient(t)
	s := newState(t, c, newPrefix(t, c), mixedDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	c2, _ := newClient(t)
	live := newState(t, c2, s.Prefix(), mixedDefs)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, rec := range stream[100:] {
			if err := live.Record(ctx, rec); err != nil {
				t.Errorf("record: %v", err)
			}
		}
	})
	if err := s.Rebuild(ctx, oracle, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	wg.Wait()
	sameValues(t, s, oracle, probes(now))
}

func TestDefinitionChange(t *testing.T) {
	now := time.Now().UTC()
	oracle := openStore(t, mixedDefs, now)
	ctx := context.Background()
	c, _ := newClient(t)
	s := newState(t, c, newPrefix(t, c), mixedDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	built(t, s)
	for _, rec := range mixedStream(200, now.Add(-time.Minute), t.Name()) {
		if err := oracle.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	changed := slices.Clone(mixedDefs)
	changed[4].Window = "2h" // acct_sum_24h, in the account group
	if err := oracle.SetDefinitions(ctx, changed); err != nil {
		t.Fatal(err)
	}
	featurestest.WaitReady(t, oracle, changed)
	if err := s.SetDefinitions(changed); err != nil {
		t.Fatal(err)
	}

	p := probes(now)[1]
	want := values(t, oracle, p)
	for i, v := range values(t, s, p) {
		account := v.Name == "acct_sum_24h" || v.Name == "acct_last_1h"
		if v.Ready == account {
			t.Errorf("%s: ready = %v after the account group changed", v.Name, v.Ready)
		}
		if !account && v.Value != want[i].Value {
			t.Errorf("%s = %v, want %v: an unchanged group lost its state", v.Name, v.Value, want[i].Value)
		}
	}
	if empty, err := s.Empty(ctx); err != nil || !empty {
		t.Errorf("Empty = %v, %v after a change; want true", empty, err)
	}
	pend, err := s.Pending(ctx)
	if err != nil || len(pend) != 1 {
		t.Errorf("Pending = %v, %v; want the account group", pend, err)
	}
	if err := s.Rebuild(ctx, oracle, nil); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Error("not Ready after the rebuild")
	}
	sameValues(t, s, oracle, probes(now))
}

func TestRebuildPastCorruptState(t *testing.T) {
	now := time.Now().UTC()
	oracle := openStore(t, mixedDefs, now)
	ctx := context.Background()
	for _, rec := range mixedStream(100, now.Add(-time.Minute), t.Name()) {
		if err := oracle.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := newClient(t)
	prefix := newPrefix(t, c)
	s := newState(t, c, prefix, mixedDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	ps := probes(now)
	bad := ps[0] // card fp_0's state is corrupt before the rebuild starts
	for _, k := range s.Calculator().Keys(&bad, nil) {
		if strings.HasSuffix(k.Key, "card.fingerprint\x00fp_0") {
			if err := c.Set(ctx, "{"+prefix+":"+k.Key+"}:s", "short", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Rebuild(ctx, oracle, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if !s.Ready() {
		t.Error("not Ready after the rebuild")
	}
	if _, err := s.Features(ctx, &bad, nil); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("corrupt card: err = %v, want ErrCorrupt", err)
	}
	sameValues(t, s, oracle, ps[1:])
}

// heldBack is a decision log that, like PostgreSQL's while an older
// transaction is open on the server, holds its newest decisions back from
// scans for a while, though they are committed: the first scans see only
// the decisions up to visible.
type heldBack struct {
	inner   *features.Store
	visible uint64 // the highest seq scans see until release scans have run
	newest  uint64
	release int
	scans   atomic.Int32
}

func (h *heldBack) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	n := h.scans.Add(1)
	err := h.inner.ScanRecords(ctx, from, func(rec *engine.Record) error {
		if int(n) <= h.release && rec.Seq > h.visible {
			return errHeld // the scan ends before the first held-back decision
		}
		return fn(rec)
	})
	if errors.Is(err, errHeld) {
		return nil
	}
	return err
}

var errHeld = errors.New("held back")

func (h *heldBack) CommittedSeq(context.Context) (uint64, error) { return h.newest, nil }

// TestRebuildReadsHeldBackDecisions: decisions committed before the
// groups were marked built, which live writes therefore skipped, are
// counted although the log held them back from the rebuild's first scans.
func TestRebuildReadsHeldBackDecisions(t *testing.T) {
	now := time.Now().UTC()
	oracle, stream := committedStream(t, 200, now)
	ctx := context.Background()
	c, _ := newClient(t)
	s := newState(t, c, newPrefix(t, c), mixedDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
	h := &heldBack{inner: oracle, visible: stream[149].Seq, newest: stream[199].Seq, release: 3}
	if err := s.Rebuild(ctx, h, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if h.scans.Load() <= int32(h.release) {
		t.Fatalf("the rebuild scanned %d times and stopped while the log held decisions back", h.scans.Load())
	}
	sameValues(t, s, oracle, probes(now))
}

// committedStream commits a mixed stream of n decisions of the minute
// before now to a new Badger store with mixedDefs: the oracle a Rebuild
// is compared with.
func committedStream(t *testing.T, n int, now time.Time) (*features.Store, []*engine.Record) {
	t.Helper()
	oracle := openStore(t, mixedDefs)
	stream := mixedStream(n, now.Add(-time.Minute), t.Name())
	for _, rec := range stream {
		if err := oracle.Commit(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	return oracle, stream
}
