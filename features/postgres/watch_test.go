package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

// waitBound is how long a test waits for a notification before failing;
// a bound on failure, not a means of synchronisation.
const waitBound = 5 * time.Second

// watcher runs Watch on db and hands its calls to the test.
type watcher struct {
	events chan []string
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatch(t *testing.T, db *postgres.DB) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{events: make(chan []string, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		db.Watch(ctx, func(prefixes []string) {
			select {
			case w.events <- prefixes:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// next returns the first call for which match is true. Other schemas of
// the test database share the channel, so calls that do not match are
// skipped rather than failed.
func (w *watcher) next(t *testing.T, what string, match func([]string) bool) []string {
	t.Helper()
	timer := time.NewTimer(waitBound)
	defer timer.Stop()
	for {
		select {
		case p := <-w.events:
			if match(p) {
				return p
			}
		case <-timer.C:
			t.Fatalf("no Watch call with %s within %v", what, waitBound)
		}
	}
}

func isNil(p []string) bool { return p == nil }

func holds(prefix string) func([]string) bool {
	return func(p []string) bool { return slices.Contains(p, prefix) }
}

func TestWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	writer := pgtest.Open(t)
	appName := "watch_" + writer.Schema
	readerURL, err := withParam(pgtest.URL(t), "application_name", appName)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := postgres.Open(ctx, postgres.Options{URL: readerURL, Schema: writer.Schema, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	w := startWatch(t, reader)
	// Nothing can arrive before LISTEN, and fn(nil) follows it at once.
	if p := <-w.events; p != nil {
		t.Fatalf("first Watch call = %q, want nil (reload everything)", p)
	}

	// Prefixes unique to this test, so other tests' changes do not match.
	own := writer.Schema + "/"
	noSlash := "ns" + writer.Schema
	store := writer.KV()
	err = store.Update(ctx, func(tx kv.Tx) error {
		for _, k := range []string{keyspace.ListItem + "a", keyspace.ListItem + "b", keyspace.LimitsPolicy, own + "k", noSlash} {
			if err := tx.Set([]byte(k), []byte("v")); err != nil {
				return err
			}
		}
		return tx.Delete([]byte(keyspace.APIKey + "gone"))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := w.next(t, own, holds(own))
	want := []string{keyspace.APIKey, keyspace.ListItem, keyspace.LimitsPolicy, noSlash, own}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Watch call = %q, want %q", got, want)
	}

	// A failed Update announces nothing; the next one only its own keys.
	rolledBack, after := writer.Schema+"-rolled-back/", writer.Schema+"-after/"
	boom := errors.New("boom")
	err = store.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Set([]byte(rolledBack+"k"), []byte("v")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing Update: %v", err)
	}
	if err := kv.Set(ctx, store, []byte(after+"k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	got = w.next(t, after, func(p []string) bool {
		if slices.Contains(p, rolledBack) {
			t.Errorf("rolled-back Update announced: %q", p)
		}
		return slices.Contains(p, after)
	})
	if !slices.Equal(got, []string{after}) {
		t.Errorf("Watch call = %q, want %q", got, []string{after})
	}

	// A lost connection: Watch reconnects, says "reload everything" and
	// follows the feed again on a new backend.
	var oldPID int
	err = writer.Pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, appName).Scan(&oldPID)
	if err != nil {
		t.Fatalf("find the listening backend: %v", err)
	}
	if _, err := writer.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", oldPID); err != nil {
		t.Fatal(err)
	}
	w.next(t, "nil after the reconnect", isNil)
	again := writer.Schema + "-again/"
	if err := kv.Set(ctx, store, []byte(again+"k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	w.next(t, again, holds(again))
	var newPID int
	err = writer.Pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, appName).Scan(&newPID)
	if err != nil || newPID == oldPID {
		t.Errorf("listening backend after the reconnect: pid %d (was %d), %v", newPID, oldPID, err)
	}

	// Watch returns once its ctx ends.
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(waitBound):
		t.Fatalf("Watch still running %v after its ctx ended", waitBound)
	}
}

// TestWatchReadOnlyUpdate checks that an Update that only reads, and a
// View, announce nothing: no call names what they read before the write
// that follows them.
func TestWatchReadOnlyUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Open(t)
	own := db.Schema + "/"
	w := startWatch(t, db)
	if p := <-w.events; p != nil {
		t.Fatalf("first Watch call = %q, want nil", p)
	}
	store := db.KV()
	read := db.Schema + "-read/"
	if err := kv.Set(ctx, store, []byte(read+"k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	w.next(t, read, holds(read))
	readOnly := func(tx kv.Tx) error {
		if _, err := tx.Get([]byte(read + "k")); err != nil {
			return err
		}
		return tx.Scan([]byte(read), kv.ScanOptions{}, func(_, _ []byte) error { return nil })
	}
	if err := store.Update(ctx, readOnly); err != nil {
		t.Fatal(err)
	}
	if err := store.View(ctx, readOnly); err != nil {
		t.Fatal(err)
	}
	if err := kv.Set(ctx, store, []byte(own+"k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	got := w.next(t, own, func(p []string) bool {
		if slices.Contains(p, read) {
			t.Errorf("a transaction that only read announced %q", p)
		}
		return slices.Contains(p, own)
	})
	if !slices.Equal(got, []string{own}) {
		t.Errorf("Watch call = %q, want %q", got, []string{own})
	}
}

// withParam adds a query parameter to a connection URL.
func withParam(raw, key, value string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
