package features_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

var labelDefs = []features.Definition{
	{Name: "card_n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h"},
	{Name: "card_chargebacks", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `"chargeback" in labels`},
}

// TestKillAfterLabelKeepsItsEffect: the replay after a crash starts after
// the last full flush, and a label on a decision before it is not in what
// is replayed, so an entity a label changed is written within a tick
// (200 ms) rather than at the next full flush. A child process commits a
// decision, waits for a full flush, labels the decision and is killed with
// SIGKILL 0.6 s later, well before the next full flush; the reopened store
// must count the chargeback, and the decision once.
func TestKillAfterLabelKeepsItsEffect(t *testing.T) {
	if os.Getenv("RISK_LABEL_CHILD_DIR") != "" {
		t.Skip("running as the child")
	}
	dir := t.TempDir()
	cmd, out := startChild(t, "TestLabelKillChild", "RISK_LABEL_CHILD_DIR", dir)
	labelled := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "LABELLED") {
			labelled = true
			break
		}
	}
	if !labelled {
		_ = cmd.Wait()
		t.Fatal("the child exited before labelling")
	}
	time.Sleep(600 * time.Millisecond) // three ticks
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
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: 2 * time.Second})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), labelDefs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, labelDefs)
	rec := record(engine.Payment{OccurredAt: time.Now().UTC().Add(-time.Minute), Card: engine.Card{Fingerprint: "fp_label"}}, engine.Allow)
	commit(t, s, rec)
	// Wait for a full flush past the decision, so the replay after the
	// kill starts after it and cannot bring the label back on its own; the
	// next full flush is two seconds away.
	for deadline := time.Now().Add(10 * time.Second); watermark(t, s) < rec.Seq; {
		if time.Now().After(deadline) {
			t.Fatal("no full flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
	l := engine.Label{Label: "chargeback", Source: "test", CreatedAt: time.Now()}
	if _, _, err := s.AddLabel(context.Background(), rec.ID, l); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("LABELLED\n")
	time.Sleep(time.Minute) // until killed
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
