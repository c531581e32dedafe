package features_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/keyspace"
)

var labelDefs = []features.Definition{
	{Name: "card_n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h"},
	{Name: "card_chargebacks", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `"chargeback" in labels`},
}

// TestKillAfterLabelKeepsItsEffect: the replay after a crash starts after
// the last full flush, and a label on a decision before it is not in what
// is replayed, so an entity a label changed is written within a tick
// rather than at the next full flush. A child process commits a decision,
// closes its store (a full flush past the decision), reopens it with a
// full flush an hour away, labels the decision, waits until the labelled
// entity is in Badger and is then killed with SIGKILL; the reopened store
// must count the chargeback, and the decision once. With the next full
// flush an hour away, only the write of a label's entities can put it
// there: without it the child fails and never reports the write.
func TestKillAfterLabelKeepsItsEffect(t *testing.T) {
	if os.Getenv("RISK_LABEL_CHILD_DIR") != "" {
		t.Skip("running as the child")
	}
	dir := t.TempDir()
	cmd, out := startChild(t, "TestLabelKillChild", "RISK_LABEL_CHILD_DIR", dir)
	written := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "LABEL WRITTEN") {
			written = true
			break
		}
	}
	if !written {
		_ = cmd.Wait()
		t.Fatal("the child exited before the label's effect was written")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := openStore(t, dir, nil)
	probe := engine.Payment{OccurredAt: time.Now().UTC(), Card: engine.Card{Fingerprint: "fp_label"}}
	if got := value(t, s, probe, "card_chargebacks"); got != 1 {
		t.Errorf("chargebacks after the kill = %v, want 1", got)
	}
	if got := value(t, s, probe, "card_n"); got != 1 {
		t.Errorf("payments after the kill = %v, want 1", got)
	}
}

// TestLabelKillChild is the child of TestKillAfterLabelKeepsItsEffect.
func TestLabelKillChild(t *testing.T) {
	dir := os.Getenv("RISK_LABEL_CHILD_DIR")
	if dir == "" {
		t.Skip("only runs as a child process")
	}
	// No full flush while the child runs: the first store is closed (a
	// full flush) and the second's next full flush is an hour away.
	opts := features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: time.Hour}
	s := features.New(opts)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), labelDefs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, labelDefs)
	rec := record(engine.Payment{OccurredAt: time.Now().UTC().Add(-time.Minute), Card: engine.Card{Fingerprint: "fp_label"}}, engine.Allow)
	commit(t, s, rec)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = features.New(opts)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The replay after the kill starts after the decision, so it cannot
	// bring the label back on its own.
	if got := watermark(t, s); got < rec.Seq {
		t.Fatalf("watermark after close = %d, want at least %d", got, rec.Seq)
	}
	before := entities(t, s)
	l := engine.Label{Label: "chargeback", Source: "test", CreatedAt: time.Now()}
	if _, _, err := s.AddLabel(context.Background(), rec.ID, l); err != nil {
		t.Fatal(err)
	}
	// Poll for the write (a tick, 200 ms); the deadline only bounds a
	// failing run.
	for deadline := time.Now().Add(10 * time.Second); maps.Equal(entities(t, s), before); {
		if time.Now().After(deadline) {
			t.Fatal("the entity the label changed was not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.Stdout.WriteString("LABEL WRITTEN\n")
	// Not synchronisation: the parent kills this process, which must not
	// exit (and close the store, a full flush) on its own before then.
	time.Sleep(time.Minute)
}

// entities reads every stored entity window, raw, by key.
func entities(tb testing.TB, s *features.Store) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyspace.Entity)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			m[string(it.Item().Key())] = string(v)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// watermark reads the sequence number up to which the stored windows hold
// every decision.
func watermark(tb testing.TB, s *features.Store) uint64 {
	tb.Helper()
	var mark uint64
	err := s.DB().View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("m/features_seq"))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				mark = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return mark
}

// startChild runs the test named test of this binary in a child process,
// with env set to dir, and returns it and its standard output.
func startChild(tb testing.TB, test, env, dir string) (*exec.Cmd, io.Reader) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, out
}
