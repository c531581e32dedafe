package backtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// openKV opens a real Badger store in a temporary directory and returns
// its kv.DB, which two Backtests share as two nodes share PostgreSQL.
func openKV(tb testing.TB) kv.DB {
	tb.Helper()
	s := features.New(features.Options{Dir: tb.TempDir(), CompileFilter: compileFilter})
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s.KV()
}

func newShared(tb testing.TB, db kv.DB, cfg backtest.Config) *backtest.Backtests {
	tb.Helper()
	cfg.History, cfg.Store = thinning{}, db
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 10 * time.Millisecond
	}
	b := backtest.New(cfg)
	tb.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// thinning is a decision log that never ends: decisions a millisecond
// apart for the first 5 s, then a second apart. A backtest of a few
// seconds near t0 reads a few thousand decisions (with OrderSlack on both
// sides) and finishes; one of a year does not.
type thinning struct{}

func (thinning) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	const dense = 5000
	for seq := max(from, 1); ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		at := t0.Add(time.Duration(seq) * time.Millisecond)
		if seq > dense {
			at = t0.Add(dense*time.Millisecond + time.Duration(seq-dense)*time.Second)
		}
		rec := &engine.Record{Seq: seq, Payment: engine.Payment{TransactionID: fmt.Sprint(seq), Amount: 100, Currency: "USD"}}
		rec.ID, rec.Outcome, rec.EvaluatedAt = fmt.Sprint("dec", seq), engine.Allow, at
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func denyOver50(from, to time.Time) backtest.Request {
	req := backtest.Request{From: from, To: to}
	req.Candidate.Spec = &rules.Spec{Rules: []rules.Rule{{ID: "x", Expression: "amount > 50", Action: engine.ActionDeny}}}
	return req
}

// pollUntil calls get until ok says its status is the one awaited.
func pollUntil(tb testing.TB, what string, get func() (backtest.Status, error), ok func(backtest.Status) bool) backtest.Status {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second) // low-priority threads on a loaded machine
	for {
		st, err := get()
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: last status %+v, err %v", what, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBacktestStatusShared: a backtest started on one node is read, listed
// and cancelled through another, and read after its node is gone.
func TestBacktestStatusShared(t *testing.T) {
	db := openKV(t)
	a := newShared(t, db, backtest.Config{YieldEvery: 1})
	b := newShared(t, db, backtest.Config{})
	ctx := context.Background()

	short, err := a.Start(ctx, denyOver50(t0, t0.Add(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	final := func(st backtest.Status) bool { return st.State == backtest.StateDone }
	done := pollUntil(t, "short backtest on a", func() (backtest.Status, error) { return a.Get(short.ID) }, final)
	if done.Result == nil || done.Result.Changed == 0 {
		t.Fatalf("short backtest result = %+v, want changed decisions", done.Result)
	}
	seen := pollUntil(t, "short backtest read on b", func() (backtest.Status, error) { return b.Get(short.ID) }, final)
	if got, want := jsonOf(t, seen), jsonOf(t, done); got != want {
		t.Errorf("read on b:\n%s\nwant what a answers:\n%s", got, want)
	}

	long, err := a.Start(ctx, denyOver50(t0, t0.Add(365*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "progress of the long backtest seen on b", func() (backtest.Status, error) { return b.Get(long.ID) },
		func(st backtest.Status) bool { return st.State == backtest.StateRunning && st.Progress.Processed > 0 })
	list, err := b.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != long.ID || list[1].ID != short.ID || list[1].Result != nil {
		t.Errorf("b lists %s, want the long then the short backtest, without results", jsonOf(t, list))
	}
	if st, err := b.Cancel(long.ID); err != nil || st.State != backtest.StateCancelled {
		t.Fatalf("cancel on b = %s, %v; want cancelled", st.State, err)
	}
	stopped := pollUntil(t, "cancel reaching a", func() (backtest.Status, error) { return a.Get(long.ID) },
		func(st backtest.Status) bool { return st.State == backtest.StateCancelled && !st.FinishedAt.IsZero() })
	if stopped.Progress.Processed >= stopped.Progress.Total || stopped.Result != nil {
		t.Errorf("cancelled on a: %+v", stopped)
	}

	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := newShared(t, db, backtest.Config{})
	if st, err := c.Get(short.ID); err != nil || jsonOf(t, st) != jsonOf(t, done) {
		t.Errorf("after a closed, a new node reads %+v, %v; want the finished backtest", st, err)
	}
	if st, err := c.Get(long.ID); err != nil || st.State != backtest.StateCancelled {
		t.Errorf("after a closed, the long backtest reads %s, %v; want cancelled", st.State, err)
	}
	for name, call := range map[string]func(string) (backtest.Status, error){"Get": c.Get, "Cancel": c.Cancel} {
		if _, err := call("bt_nope"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s of an unknown backtest = %v, want ErrNotFound", name, err)
		}
	}
}

// TestBacktestStaleStatusReadsFailed: a backtest whose node stopped
// writing its status is reported failed, not running forever.
func TestBacktestStaleStatusReadsFailed(t *testing.T) {
	db := openKV(t)
	a := newShared(t, db, backtest.Config{Heartbeat: time.Hour})
	long, err := a.Start(context.Background(), denyOver50(t0, t0.Add(365*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(backtest.DefaultStaleAfter + time.Minute) }
	b := newShared(t, db, backtest.Config{Now: later})
	st, err := b.Get(long.ID)
	if err != nil || st.State != backtest.StateFailed || !strings.Contains(st.Error, "stopped") {
		t.Errorf("stale backtest reads %s %q, %v; want failed, the node stopped", st.State, st.Error, err)
	}
	if st, err := b.Cancel(long.ID); err != nil || st.State != backtest.StateFailed {
		t.Errorf("cancel of a stale backtest = %s, %v; want it left failed", st.State, err)
	}
	now := newShared(t, db, backtest.Config{})
	if st, err := now.Get(long.ID); err != nil || st.State == "" || st.State == backtest.StateFailed {
		t.Errorf("fresh status reads %s, %v; want queued or running", st.State, err)
	}
}

// TestBacktestStoredVersion: a status written by a later build is an
// error, not a guess.
func TestBacktestStoredVersion(t *testing.T) {
	db := openKV(t)
	err := db.Update(context.Background(), func(tx kv.Tx) error {
		return tx.Set([]byte("bt/bt_future"), []byte(`{"v":2,"id":"bt_future","state":"done"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	b := newShared(t, db, backtest.Config{})
	if _, err := b.Get("bt_future"); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("Get of a later version = %v, want ErrCorrupt", err)
	}
	if _, err := b.List(); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("List with a later version = %v, want ErrCorrupt", err)
	}
}
