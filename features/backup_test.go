package features_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestBackupRestoreOnline takes a backup while decisions are being
// committed, restores it into a new directory, and finds there every
// decision committed before the backup started, with the feature values
// the original store had for them.
func TestBackupRestoreOnline(t *testing.T) {
	src := openStore(t, t.TempDir(), countDefs)
	now := time.Now().UTC()
	var before []*engine.Record
	for i := range 200 {
		p := engine.Payment{OccurredAt: now, Amount: int64(i + 1), Card: engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i%7)}, Account: engine.Account{ID: fmt.Sprintf("acc_%d", i%5)}}
		rec := record(p, engine.Allow)
		commit(t, src, rec)
		before = append(before, rec)
	}
	// Keep writing while the backup streams: it must still be one
	// consistent snapshot.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p := engine.Payment{OccurredAt: now, Amount: 1, Card: engine.Card{Fingerprint: "fp_live"}, Account: engine.Account{ID: "acc_live"}}
			if err := src.Commit(context.Background(), record(p, engine.Deny)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf bytes.Buffer
	version, err := src.Backup(context.Background(), &buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if version == 0 {
		t.Errorf("backup version = 0")
	}

	dir := filepath.Join(t.TempDir(), "restored")
	got, err := features.Restore(context.Background(), dir, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got != version {
		t.Errorf("restored version %d, backup version %d", got, version)
	}
	dst := openStore(t, dir, nil)
	for _, rec := range before {
		r, err := dst.Get(context.Background(), rec.ID)
		if err != nil {
			t.Fatalf("decision %s after restore: %v", rec.ID, err)
		}
		if r.TransactionID != rec.TransactionID || r.Payment.Amount != rec.Payment.Amount || r.Seq != rec.Seq {
			t.Errorf("decision %s restored as %+v", rec.ID, r.Decision)
		}
		if _, err := dst.Lookup(context.Background(), rec.TransactionID); err != nil {
			t.Errorf("transaction %s after restore: %v", rec.TransactionID, err)
		}
	}
	// Feature values for the entities the live writer did not touch are
	// exactly those of the source.
	probe := now.Add(time.Second)
	for i := range 7 {
		p := engine.Payment{OccurredAt: probe, Card: engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i)}, Account: engine.Account{ID: fmt.Sprintf("acc_%d", i%5)}}
		for _, name := range []string{"card_n", "acct_sum"} {
			if g, w := value(t, dst, p, name), value(t, src, p, name); g != w {
				t.Errorf("%s for %s after restore = %v, want %v", name, p.Card.Fingerprint, g, w)
			}
		}
	}
	// The live entity holds exactly the decisions the backup holds.
	live := engine.Payment{OccurredAt: probe, Card: engine.Card{Fingerprint: "fp_live"}}
	n := 0
	for range searchAll(t, dst, engine.Query{Outcome: engine.Deny}) {
		n++
	}
	if g := value(t, dst, live, "card_n"); int(g) != n {
		t.Errorf("fp_live count after restore = %v, but %d of its decisions were restored", g, n)
	}
}

// searchAll yields every record matching q.
func searchAll(tb testing.TB, s *features.Store, q engine.Query) iter.Seq[*engine.Record] {
	return func(yield func(*engine.Record) bool) {
		if q.Limit == 0 {
			q.Limit = 500
		}
		for {
			recs, next, err := s.Search(context.Background(), q)
			if err != nil {
				tb.Fatal(err)
			}
			for _, r := range recs {
				if !yield(r) {
					return
				}
			}
			if next == "" {
				return
			}
			q.Cursor = next
		}
	}
}

func TestRestoreRefusesBadBackups(t *testing.T) {
	src := openStore(t, t.TempDir(), countDefs)
	for range 50 {
		commit(t, src, record(engine.Payment{OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "fp"}}, engine.Allow))
	}
	var buf bytes.Buffer
	if _, err := src.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not a backup", []byte("hello, world, this is not a backup at all............................")},
		{"header only", good[:12]},
		{"cut in the middle", good[:len(good)/2]},
		{"footer missing", good[:len(good)-48]},
		{"footer cut", good[:len(good)-1]},
		{"one byte changed", flipped},
		{"trailing garbage", append(bytes.Clone(good), 'x')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "restored")
			_, err := features.Restore(context.Background(), dir, bytes.NewReader(tt.data))
			if !errors.Is(err, features.ErrBadBackup) {
				t.Fatalf("restore err = %v, want ErrBadBackup", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("restore left %s behind (stat: %v)", dir, err)
			}
			if _, err := features.VerifyBackup(bytes.NewReader(tt.data)); !errors.Is(err, features.ErrBadBackup) {
				t.Errorf("verify err = %v, want ErrBadBackup", err)
			}
		})
	}
	t.Run("into a used directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := features.Restore(context.Background(), dir, bytes.NewReader(good)); err == nil {
			t.Fatal("restore into a non-empty directory succeeded")
		}
		if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
			t.Errorf("restore touched the directory: %v", err)
		}
	})
	if _, err := features.VerifyBackup(bytes.NewReader(good)); err != nil {
		t.Errorf("verify of a good backup: %v", err)
	}
}

// TestBackupDirOffline backs up a closed store's directory and refuses an
// open one (Badger allows one process per directory).
func TestBackupDirOffline(t *testing.T) {
	dir := t.TempDir()
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), countDefs); err != nil {
		t.Fatal(err)
	}
	rec := record(engine.Payment{OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "fp"}}, engine.Challenge)
	commit(t, s, rec)
	if _, err := features.BackupDir(context.Background(), dir, &bytes.Buffer{}); err == nil {
		t.Error("offline backup of an open directory succeeded")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := features.BackupDir(context.Background(), dir, &buf); err != nil {
		t.Fatalf("offline backup: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "r")
	if _, err := features.Restore(context.Background(), restored, &buf); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, restored, nil)
	got, err := dst.Get(context.Background(), rec.ID)
	if err != nil || got.Outcome != engine.Challenge {
		t.Fatalf("restored decision = %+v, %v", got, err)
	}
	p := engine.Payment{OccurredAt: time.Now().Add(time.Second), Card: engine.Card{Fingerprint: "fp"}}
	if v := value(t, dst, p, "card_n"); v != 1 {
		t.Errorf("card_n after restore = %v, want 1", v)
	}
}
