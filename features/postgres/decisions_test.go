package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

func TestDecisionsRoundTrip(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	want := fullRecord("tx_full", jan2026)
	commit(t, d, want)
	if want.Seq == 0 {
		t.Fatal("Commit left Seq at 0")
	}

	got, err := d.Lookup(ctx, "tx_full")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	sameRecord(t, "lookup", got, want)
	got, err = d.Get(ctx, want.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	sameRecord(t, "get", got, want)
	found, _, err := d.Search(ctx, engine.Query{AccountID: "acc_1"})
	if err != nil || len(found) != 1 {
		t.Fatalf("search: %d records, %v", len(found), err)
	}
	sameRecord(t, "search", found[0], want)

	// Labels come back with the record.
	l := engine.Label{Label: engine.LabelFraud, Note: "confirmed", Source: "analyst:ana", CreatedAt: jan2026.AddDate(0, 0, 3)}
	labelled, added, err := d.AddLabel(ctx, want.ID, l)
	if err != nil || !added {
		t.Fatalf("add label: added %v, %v", added, err)
	}
	want.Labels = []engine.Label{l}
	sameRecord(t, "add label", labelled, want)
	got, err = d.Lookup(ctx, "tx_full")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	sameRecord(t, "lookup after label", got, want)
}

func TestDecisionsNotFound(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	_, err := d.Lookup(ctx, "tx_missing")
	if !errors.Is(err, engine.ErrNotFound) || !errors.Is(err, postgres.ErrNotFound) {
		t.Errorf("lookup: got %v, want ErrNotFound", err)
	}
	_, err = d.Get(ctx, "dec_missing")
	if !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get: got %v, want ErrNotFound", err)
	}
	_, _, err = d.AddLabel(ctx, "dec_missing", engine.Label{Label: engine.LabelLegit})
	if !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("add label: got %v, want ErrNotFound", err)
	}
}

// TestDecisionsDuplicateAcrossNodes commits one transaction id from 50
// goroutines through two decision logs on one database, as two nodes would.
func TestDecisionsDuplicateAcrossNodes(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	nodes := []*postgres.Decisions{
		newDecisions(t, openDB(t, url, schema), postgres.DecisionOptions{}),
		newDecisions(t, openDB(t, url, schema), postgres.DecisionOptions{}),
	}
	const n = 50
	recs := make([]*engine.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = fullRecord("tx_same", jan2026)
		recs[i].Score = i // tells the records apart
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nodes[i%2].Commit(context.Background(), recs[i])
		}()
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		var dup *engine.DuplicateError
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("commits %d and %d both stored", winner, i)
			}
			winner = i
		case errors.As(err, &dup):
			if dup.Stored.ID != engine.DecisionID("tx_same") {
				t.Errorf("commit %d: duplicate of %q", i, dup.Stored.ID)
			}
		default:
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no commit stored the decision")
	}
	for i, err := range errs {
		var dup *engine.DuplicateError
		if errors.As(err, &dup) && (dup.Stored.Score != winner || dup.Stored.Seq != recs[winner].Seq) {
			t.Errorf("commit %d: stored record has score %d seq %d, want the winner's %d seq %d",
				i, dup.Stored.Score, dup.Stored.Seq, winner, recs[winner].Seq)
		}
	}
	if c, err := nodes[0].Count(context.Background()); err != nil || c != 1 {
		t.Errorf("count: %d, %v; want 1", c, err)
	}
	stored, err := nodes[1].Lookup(context.Background(), "tx_same")
	if err != nil || stored.Score != winner {
		t.Errorf("lookup: %v, %v; want the winner's record", stored, err)
	}
}

// holdCommitter returns hooks that hold the committer in its first batch
// until release is closed, and a way to wait until k commits are queued.
type holdCommitter struct {
	started chan struct{} // closed when the first batch is held
	release chan struct{}
	once    sync.Once
	queued  sync.WaitGroup
	mu      sync.Mutex
	sizes   []int
}

func hold(d *postgres.Decisions, skipPartitions bool) *holdCommitter {
	h := &holdCommitter{started: make(chan struct{}), release: make(chan struct{})}
	postgres.SetDecisionHooks(d, func(n int) {
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		h.mu.Unlock()
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.started)
			<-h.release
		}
	}, h.queued.Done, skipPartitions)
	return h
}

func (h *holdCommitter) batchSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.sizes...)
}

func TestDecisionsGroupCommit(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	h := hold(d, false)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	start := func(rec *engine.Record) {
		h.queued.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- d.Commit(ctx, rec)
		}()
	}
	start(record("tx_first", jan2026, "acc", "fp", engine.Allow))
	<-h.started // the committer holds the first batch
	const later = 20
	for i := range later {
		start(record(fmt.Sprintf("tx_%02d", i), jan2026, "acc", "fp", engine.Allow))
	}
	// A twin of an id in the same batch is a duplicate too.
	start(record("tx_05", jan2026, "acc", "fp", engine.Deny))
	h.queued.Wait() // every later commit is queued behind the held batch
	close(h.release)
	wg.Wait()
	close(errs)
	dups := 0
	var told *engine.Record
	for err := range errs {
		var dup *engine.DuplicateError
		switch {
		case errors.As(err, &dup):
			dups++
			told = dup.Stored
		case err != nil:
			t.Errorf("commit: %v", err)
		}
	}
	// Whichever of the twins queued first is stored; the other is told so.
	stored, err := d.Lookup(ctx, "tx_05")
	if err != nil {
		t.Fatal(err)
	}
	if told == nil || told.Seq != stored.Seq || told.Outcome != stored.Outcome || stored.Seq == 0 {
		t.Errorf("the duplicate twin was told %+v, want the stored %+v", told, stored)
	}
	if dups != 1 {
		t.Errorf("%d duplicates, want 1 (the twin)", dups)
	}
	if got, want := fmt.Sprint(h.batchSizes()), "[1 21]"; got != want {
		t.Errorf("batch sizes %s, want %s", got, want)
	}
	st := d.Stats()
	if st.Commits != 22 || st.Batches != 2 || st.Duplicates != 1 || st.Failed != 0 {
		t.Errorf("stats %+v, want 22 commits in 2 batches, 1 duplicate", st)
	}
	if c, err := d.Count(ctx); err != nil || c != 21 {
		t.Errorf("count %d, %v; want 21", c, err)
	}
}

// TestDecisionsCommitContext: a commit whose ctx ends before the committer
// takes it returns the ctx error and is never written.
func TestDecisionsCommitContext(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	h := hold(d, false)
	h.queued.Add(2)
	first := make(chan error, 1)
	go func() { first <- d.Commit(context.Background(), record("tx_a", jan2026, "acc", "fp", engine.Allow)) }()
	<-h.started
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- d.Commit(ctx, record("tx_b", jan2026, "acc", "fp", engine.Allow)) }()
	h.queued.Wait()
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("commit with a cancelled ctx: %v, want context.Canceled", err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("first commit: %v", err)
	}
	// Close drains the queue: the abandoned commit must not be written.
	if err := d.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := d.Lookup(context.Background(), "tx_b"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("lookup of the abandoned commit: %v, want ErrNotFound", err)
	}
	if err := d.Commit(context.Background(), record("tx_c", jan2026, "acc", "fp", engine.Allow)); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("commit after close: %v, want ErrUnavailable", err)
	}
}

func TestDecisionsLabels(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	rec := record("tx_l", jan2026, "acc", "fp", engine.Challenge)
	commit(t, d, rec)

	fraud := engine.Label{Label: engine.LabelFraud, Source: "gateway", CreatedAt: jan2026}
	if _, added, err := d.AddLabel(ctx, rec.ID, fraud); err != nil || !added {
		t.Fatalf("first fraud label: added %v, %v", added, err)
	}
	again := fraud
	again.Note = "again"
	got, added, err := d.AddLabel(ctx, rec.ID, again)
	if err != nil || added {
		t.Fatalf("second fraud label: added %v, %v; want not added", added, err)
	}
	if len(got.Labels) != 1 || got.Labels[0].Note != "" {
		t.Errorf("labels after a repeat: %+v, want the first fraud label only", got.Labels)
	}

	// Concurrent labels of one decision are all kept (the row lock).
	others := []string{engine.LabelChargeback, engine.LabelLegit, engine.LabelChallengeFailed, engine.LabelChallengePassed}
	var wg sync.WaitGroup
	for _, l := range others {
		for range 3 { // each label three times: added once
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := d.AddLabel(ctx, rec.ID, engine.Label{Label: l, CreatedAt: jan2026}); err != nil {
					t.Errorf("label %s: %v", l, err)
				}
			}()
		}
	}
	wg.Wait()
	got, err = d.Get(ctx, rec.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(got.Labels) != 1+len(others) {
		t.Errorf("labels %+v, want %d", got.Labels, 1+len(others))
	}
	for _, l := range append(others, engine.LabelFraud) {
		if !got.HasLabel(l) {
			t.Errorf("label %s missing", l)
		}
	}
}

// TestDecisionsUnstorableText: what PostgreSQL cannot store is refused
// before it joins a batch, so it fails alone; the near misses store.
func TestDecisionsUnstorableText(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	bad := record("tx_bad", jan2026, "acc\x00", "fp", engine.Allow)
	if err := d.Commit(ctx, bad); err == nil {
		t.Error("commit of a NUL account id: no error")
	}
	bad = record("tx_bad2", jan2026, "acc", "fp", engine.Allow)
	bad.Payment.Attributes = map[string]any{"note": "a\x00b"}
	if err := d.Commit(ctx, bad); err == nil {
		t.Error("commit of a NUL attribute: no error")
	}
	good := record("tx_good", jan2026, "acc", "fp", engine.Allow)
	good.Payment.Attributes = map[string]any{"note": `\u0000 is text here`}
	good.Request = []byte("raw\x00bytes\xff")
	commit(t, d, good)
	got, err := d.Lookup(ctx, "tx_good")
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, "near misses", got, good)
	if st := d.Stats(); st.Failed != 0 {
		t.Errorf("stats %+v: a batch failed", st)
	}
}

// TestDecisionsCloseDrains: commits queued when Close is called are
// written before it returns.
func TestDecisionsCloseDrains(t *testing.T) {
	t.Parallel()
	db := pgtest.Open(t)
	d := postgres.NewDecisions(db, postgres.DecisionOptions{MaintainEvery: -1})
	h := hold(d, false)
	const n = 6
	h.queued.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- d.Commit(context.Background(), record(fmt.Sprintf("tx_%d", i), jan2026, "acc", "fp", engine.Allow))
		}()
	}
	<-h.started
	h.queued.Wait()
	closed := make(chan error, 1)
	go func() { closed <- d.Close(context.Background()) }()
	close(h.release)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("commit queued before close: %v", err)
		}
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second close: %v", err)
	}
	if c, err := d.Count(context.Background()); err != nil || c != n {
		t.Errorf("count %d, %v; want %d", c, err, n)
	}
}

// TestDecisionsFailedBatch: when the batch's transaction fails every commit
// in it fails, and none is acknowledged.
func TestDecisionsFailedBatch(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	h := hold(d, false)
	h.queued.Add(1)
	first := make(chan error, 1)
	go func() { first <- d.Commit(context.Background(), record("tx_0", jan2026, "acc", "fp", engine.Allow)) }()
	<-h.started
	const n = 4
	h.queued.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- d.Commit(context.Background(), record(fmt.Sprintf("tx_%d", i+1), jan2026, "acc", "fp", engine.Allow))
		}()
	}
	h.queued.Wait()
	// Make the held second batch fail: a claim row of its first id that
	// decisions does not back, as an inconsistent store would have.
	if _, err := db.Pool.Exec(context.Background(),
		"INSERT INTO decision_txids VALUES ('tx_1', 'dec_x', $1)", jan2026); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for range n {
		if err := <-errs; err == nil {
			t.Error("a commit of the failed batch succeeded")
		}
	}
	if st := d.Stats(); st.Failed != 1 || st.Batches != 2 {
		t.Errorf("stats %+v, want 1 failed batch of 2", st)
	}
	if c, err := d.Count(context.Background()); err != nil || c != 1 {
		t.Errorf("count %d, %v; want only the first batch's 1", c, err)
	}
}
