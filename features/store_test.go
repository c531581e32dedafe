package features_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

var countDefs = []features.Definition{
	{Name: "card_n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h"},
	{Name: "acct_sum", Entity: features.Paths{"account.id"}, Aggregate: features.Sum, Field: "amount", Window: "24h"},
}

func TestConcurrentCommitsAllCounted(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	now := time.Now().UTC()
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := engine.Payment{OccurredAt: now, Amount: 1, Card: engine.Card{Fingerprint: "hot"}, Account: engine.Account{ID: "a"}}
			if err := s.Commit(context.Background(), record(p, engine.Allow)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "hot"}, Account: engine.Account{ID: "a"}}
	if got := value(t, s, probe, "card_n"); got != n {
		t.Errorf("card count = %v, want %d", got, n)
	}
	if got := value(t, s, probe, "acct_sum"); got != n {
		t.Errorf("account sum = %v, want %d", got, n)
	}
}

func TestEvictionKeepsUpdates(t *testing.T) {
	// A tiny cache forces evictions of dirty windows between flushes.
	s := openStore(t, t.TempDir(), countDefs, func(o *features.Options) { o.CacheEntries = 16; o.FlushInterval = 5 * time.Millisecond })
	now := time.Now().UTC()
	const cards, rounds = 300, 5
	for r := 0; r < rounds; r++ {
		for c := 0; c < cards; c++ {
			commit(t, s, record(engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: fmt.Sprintf("c%d", c)}}, engine.Allow))
		}
	}
	for c := 0; c < cards; c++ {
		if got := value(t, s, engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: fmt.Sprintf("c%d", c)}}, "card_n"); got != rounds {
			t.Fatalf("card c%d count = %v, want %d", c, got, rounds)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: time.Hour})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), countDefs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, countDefs)
	var ids []string
	for i := 0; i < 50; i++ {
		rec := record(engine.Payment{OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}, engine.Allow)
		commit(t, s, rec)
		ids = append(ids, rec.ID)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, nil)
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}
	if got := value(t, s2, probe, "card_n"); got != 50 {
		t.Errorf("after restart card count = %v, want 50", got)
	}
	if got := value(t, s2, probe, "acct_sum"); got != 500 {
		t.Errorf("after restart account sum = %v, want 500", got)
	}
	for _, id := range ids {
		if _, err := s2.Get(context.Background(), id); err != nil {
			t.Fatalf("decision %s lost: %v", id, err)
		}
	}
	// Sequence numbers continue after a restart.
	rec := record(engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "fp"}}, engine.Allow)
	commit(t, s2, rec)
	if rec.Seq != 51 {
		t.Errorf("seq after restart = %d, want 51", rec.Seq)
	}
}

// TestKillNineLosesNoAcknowledgedDecision starts a child process that
// commits decisions and prints each acknowledged transaction id, kills it
// with SIGKILL mid-stream, reopens the store and checks that every
// acknowledged decision is present and counted exactly once in the
// features. The flush interval is long, so feature state is rebuilt from
// the decision log.
func TestKillNineLosesNoAcknowledgedDecision(t *testing.T) {
	if os.Getenv("RISK_KILL_CHILD_DIR") != "" {
		t.Skip("running as the child")
	}
	dir := t.TempDir()
	cmd, out := startChild(t, "TestKillChild", "RISK_KILL_CHILD_DIR", dir)
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		tx, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			continue
		}
		acked = append(acked, tx)
		if len(acked) == 3000 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("child acknowledged only %d decisions before exiting", len(acked))
	}
	s := openStore(t, dir, nil)
	for _, tx := range acked {
		if _, err := s.Lookup(context.Background(), tx); err != nil {
			t.Fatalf("acknowledged %s lost: %v", tx, err)
		}
	}
	// Every committed decision (acknowledged or not yet printed) is counted once.
	committed := 0
	if err := s.ScanRecords(context.Background(), 1, func(*engine.Record) error { committed++; return nil }); err != nil {
		t.Fatal(err)
	}
	got := value(t, s, engine.Payment{OccurredAt: time.Now().UTC().Add(time.Second), Card: engine.Card{Fingerprint: "kill"}}, "card_n")
	if int(got) != committed {
		t.Errorf("card count after kill = %v, want %d (one per committed decision)", got, committed)
	}
	t.Logf("acknowledged %d, committed %d, counted %v", len(acked), committed, got)
}

// TestKillChild is the child of TestKillNineLosesNoAcknowledgedDecision.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("RISK_KILL_CHILD_DIR")
	if dir == "" {
		t.Skip("only runs as a child process")
	}
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: 20 * time.Millisecond})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), countDefs); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				rec := record(engine.Payment{OccurredAt: time.Now().UTC(), Card: engine.Card{Fingerprint: "kill"}}, engine.Allow)
				if err := s.Commit(context.Background(), rec); err != nil {
					return
				}
				mu.Lock()
				w.WriteString("ACK " + rec.TransactionID + "\n")
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestBackfillBuildsFromHistory(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	now := time.Now().UTC()
	for i := 0; i < 200; i++ {
		p := engine.Payment{OccurredAt: now.Add(-time.Duration(i) * time.Minute), Amount: 3, Device: engine.Device{ID: "dev"}, Card: engine.Card{Fingerprint: "fp" + strconv.Itoa(i%7)}}
		commit(t, s, record(p, engine.Allow))
	}
	newDef := features.Definition{Name: "dev_cards_2h", Entity: features.Paths{"device.id"}, Aggregate: features.Count, Window: "2h"}
	if err := s.SetDefinitions(context.Background(), append(append([]features.Definition(nil), countDefs...), newDef)); err != nil {
		t.Fatal(err)
	}
	// Decisions keep flowing during the backfill and are counted once.
	for i := 0; i < 20; i++ {
		commit(t, s, record(engine.Payment{OccurredAt: now, Device: engine.Device{ID: "dev"}}, engine.Allow))
	}
	waitReady(t, s, []features.Definition{newDef})
	st, _ := s.Status("dev_cards_2h")
	if !st.Done || st.Processed != st.Total || st.Total != 200 {
		t.Errorf("status = %+v, want done with 200 of 200", st)
	}
	// The window covers 2h: events at 0..120 minutes ago (121 of them,
	// the oldest bucket inclusive) plus the 20 live ones.
	got := value(t, s, engine.Payment{OccurredAt: now.Add(time.Second), Device: engine.Device{ID: "dev"}}, "dev_cards_2h")
	if got < 140 || got > 142 {
		t.Errorf("backfilled count = %v, want 141±1", got)
	}
}

func TestFeatureNotReadyDuringBackfill(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	for i := 0; i < 3000; i++ {
		commit(t, s, record(engine.Payment{OccurredAt: time.Now().UTC(), Card: engine.Card{Fingerprint: "x"}}, engine.Allow))
	}
	newDef := features.Definition{Name: "late", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"}
	if err := s.SetDefinitions(context.Background(), []features.Definition{newDef}); err != nil {
		t.Fatal(err)
	}
	vals, err := s.Features(context.Background(), &engine.Payment{OccurredAt: time.Now().UTC(), Card: engine.Card{Fingerprint: "x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Status("late")
	if !st.Done && vals[0].Ready {
		t.Error("feature reads ready while its backfill runs")
	}
	waitReady(t, s, []features.Definition{newDef})
	vals, _ = s.Features(context.Background(), &engine.Payment{OccurredAt: time.Now().UTC().Add(time.Second), Card: engine.Card{Fingerprint: "x"}}, nil)
	if !vals[0].Ready || vals[0].Value != 3000 {
		t.Errorf("after backfill = %+v, want ready with 3000", vals[0])
	}
}

func TestSearchAndLabels(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	base := time.Now().UTC().Add(-time.Hour)
	var recs []*engine.Record
	for i := 0; i < 30; i++ {
		outcome := engine.Allow
		switch {
		case i%3 == 0:
			outcome = engine.Deny
		case i%4 == 1:
			outcome = engine.Challenge
		}
		p := engine.Payment{OccurredAt: base.Add(time.Duration(i) * time.Minute), Account: engine.Account{ID: "acc" + strconv.Itoa(i%2)}, Card: engine.Card{Fingerprint: "fp"}}
		rec := record(p, outcome)
		commit(t, s, rec)
		recs = append(recs, rec)
	}
	ctx := context.Background()
	// Newest first, paged.
	seen := transactionIDs(searchAll(t, s, engine.Query{AccountID: "acc0", Limit: 4}))
	var want []string
	for i := 28; i >= 0; i -= 2 {
		want = append(want, recs[i].TransactionID)
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("account search =\n %v\nwant\n %v", seen, want)
	}
	denies, _, err := s.Search(ctx, engine.Query{Outcome: engine.Deny, From: base.Add(10 * time.Minute), To: base.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(denies) != 3 { // minutes 12, 15, 18
		t.Errorf("denies in range = %d, want 3", len(denies))
	}
	// Neither account, card nor outcome: every decision in the time range,
	// whatever its outcome, newest first, across pages.
	seen = transactionIDs(searchAll(t, s, engine.Query{From: base.Add(5 * time.Minute), To: base.Add(25 * time.Minute), Limit: 3}))
	want = nil
	for i := 24; i >= 5; i-- { // To is exclusive, From inclusive
		want = append(want, recs[i].TransactionID)
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("time search =\n %v\nwant\n %v", seen, want)
	}
	if _, _, err := s.Search(ctx, engine.Query{Cursor: "%%%"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("bad cursor err = %v, want ErrInvalid", err)
	}

	l := engine.Label{Label: engine.LabelFraud, Note: "confirmed", CreatedAt: time.Now()}
	got, added, err := s.AddLabel(ctx, recs[0].ID, l)
	if err != nil || !added || len(got.Labels) != 1 {
		t.Fatalf("AddLabel = %v, added %v, labels %v", err, added, got)
	}
	if _, added, _ := s.AddLabel(ctx, recs[0].ID, l); added {
		t.Error("the same label was added twice")
	}
	stored, _ := s.Get(ctx, recs[0].ID)
	if len(stored.Labels) != 1 || stored.Labels[0].Note != "confirmed" || stored.Seq != recs[0].Seq {
		t.Errorf("stored after label = %+v", stored)
	}
	if _, _, err := s.AddLabel(ctx, "dec_nope", l); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("label unknown decision err = %v, want ErrNotFound", err)
	}
}

// transactionIDs lists the transaction ids of records in order.
func transactionIDs(recs iter.Seq[*engine.Record]) []string {
	var ids []string
	for r := range recs {
		ids = append(ids, r.TransactionID)
	}
	return ids
}

// TestReplaySkipsWhatStoredWindowsHold pins the per-window sequence number:
// a window may be written with decisions newer than the watermark stored
// beside it (windows are encoded after the watermark is taken), and the
// replay after a restart must not count those decisions again. The test
// winds the watermark back by hand, as if the process had died right after
// writing the windows of a later flush.
func TestReplaySkipsWhatStoredWindowsHold(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	s := openStore(t, dir, countDefs, func(o *features.Options) { o.FlushInterval = time.Hour })
	for i := range 50 {
		fp := "fp1"
		if i >= 30 {
			fp = "fp2"
		}
		commit(t, s, record(engine.Payment{OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: fp}, Account: engine.Account{ID: "a"}}, engine.Allow))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("m/features_seq"), binary.BigEndian.AppendUint64(nil, 10))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, dir, nil)
	for _, tc := range []struct {
		fp, feature string
		want        float64
	}{
		{"fp1", "card_n", 30},
		{"fp2", "card_n", 20},
		{"fp1", "acct_sum", 500},
	} {
		probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: tc.fp}, Account: engine.Account{ID: "a"}}
		if got := value(t, s2, probe, tc.feature); got != tc.want {
			t.Errorf("%s of %s after replay = %v, want %v", tc.feature, tc.fp, got, tc.want)
		}
	}
}

// TestRedefinedFeatureStartsFromHistory: changing a feature, or deleting and
// defining it again, rebuilds its state from the decision log and never adds
// to what an earlier definition counted, also across a restart.
func TestRedefinedFeatureStartsFromHistory(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	s := openStore(t, dir, countDefs)
	pay := func(n int) {
		for range n {
			commit(t, s, record(engine.Payment{OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}, engine.Allow))
		}
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}
	set := func(defs []features.Definition) {
		t.Helper()
		if err := s.SetDefinitions(context.Background(), defs); err != nil {
			t.Fatal(err)
		}
		waitReady(t, s, defs)
	}
	pay(10)
	changed := []features.Definition{{Name: "card_n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"}, countDefs[1]}
	set(changed)
	if got := value(t, s, probe, "card_n"); got != 10 {
		t.Errorf("after redefinition card_n = %v, want 10", got)
	}
	set(countDefs[1:]) // card_n deleted
	pay(5)
	set(countDefs) // and defined again
	if got := value(t, s, probe, "card_n"); got != 15 {
		t.Errorf("after re-creation card_n = %v, want 15", got)
	}
	if got := value(t, s, probe, "acct_sum"); got != 150 {
		t.Errorf("untouched acct_sum = %v, want 150", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	if got := value(t, s, probe, "card_n"); got != 15 {
		t.Errorf("after restart card_n = %v, want 15", got)
	}
}

// TestCommitFindsDuplicates: the idempotency check happens in the commit. A
// transaction id committed before (or twice at once, even past the engine)
// is written once, counted once, and answered with the stored record.
func TestCommitFindsDuplicates(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	now := time.Now().UTC()
	p := engine.Payment{TransactionID: "tx_dup", OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "fp"}}
	first := record(p, engine.Allow)
	commit(t, s, first)

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Commit(context.Background(), record(p, engine.Allow)) })
	}
	wg.Wait()
	for i, err := range errs {
		var dup *engine.DuplicateError
		if !errors.As(err, &dup) {
			t.Fatalf("commit %d of a decided transaction: err = %v, want a DuplicateError", i, err)
		}
		if dup.Stored.ID != first.ID {
			t.Errorf("commit %d: stored record %s, want %s", i, dup.Stored.ID, first.ID)
		}
	}
	// Two new commits of one id racing each other: one is written.
	q := engine.Payment{TransactionID: "tx_race", OccurredAt: now, Amount: 10, Card: engine.Card{Fingerprint: "fp"}}
	var written, dups atomic.Int64
	for range 20 {
		wg.Go(func() {
			var dup *engine.DuplicateError
			switch err := s.Commit(context.Background(), record(q, engine.Allow)); {
			case err == nil:
				written.Add(1)
			case errors.As(err, &dup):
				dups.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if written.Load() != 1 || dups.Load() != 19 {
		t.Errorf("racing commits: %d written, %d duplicates; want 1 and 19", written.Load(), dups.Load())
	}
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "fp"}}
	if got := value(t, s, probe, "card_n"); got != 2 {
		t.Errorf("card_n = %v, want 2 (one per transaction)", got)
	}
}

// TestFeaturesPastDeadline: features not read before the context ends
// read as their empty value, marked not ready, and the error says why.
func TestFeaturesPastDeadline(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	vals, err := s.Features(ctx, &engine.Payment{OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(vals) != len(countDefs) {
		t.Fatalf("%d values, want %d", len(vals), len(countDefs))
	}
	for _, v := range vals {
		if v.Ready || v.Value != 0 {
			t.Errorf("%s = %+v, want empty and not ready", v.Name, v)
		}
	}
}

// TestFlushInChunks flushes more entities than one write batch takes and
// checks, after a restart, that every one was written and that the
// watermark written after the last chunk keeps the replay from counting
// any decision twice.
func TestFlushInChunks(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: time.Hour})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), countDefs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, countDefs)
	const cards = 700 // with an account each: 1,400 entities, six chunks
	for i := range cards {
		fp := fmt.Sprintf("fp_%d", i)
		commit(t, s, record(engine.Payment{OccurredAt: now, Amount: 7, Card: engine.Card{Fingerprint: fp}, Account: engine.Account{ID: "a_" + fp}}, engine.Allow))
	}
	if err := s.Close(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	s2 := openStore(t, dir, nil)
	for i := range cards {
		fp := fmt.Sprintf("fp_%d", i)
		probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: fp}, Account: engine.Account{ID: "a_" + fp}}
		if n, sum := value(t, s2, probe, "card_n"), value(t, s2, probe, "acct_sum"); n != 1 || sum != 7 {
			t.Fatalf("card %s after restart: count %v, sum %v; want 1 and 7", fp, n, sum)
		}
	}
}

// TestCloseIsBounded: when Badger cannot write (here its directory is
// gone, as with a failed disk), Close gives up when its context ends
// instead of retrying forever, so the server still exits.
func TestCloseIsBounded(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, countDefs, func(o *features.Options) { o.FlushInterval = time.Hour })
	now := time.Now().UTC()
	for range 20 {
		commit(t, s, record(engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "fp"}, Account: engine.Account{ID: "a"}}, engine.Allow))
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Close(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Log("badger closed without error on a removed directory")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return 28 s after its context ended")
	}
}
