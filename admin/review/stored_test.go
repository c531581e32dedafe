package review_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/features/kv"
)

// rawEntry is one stored key and value, read below the package.
type rawEntry struct{ key, value []byte }

// scanRaw returns every entry under prefix, in key order.
func scanRaw(tb testing.TB, db kv.DB, prefix string) []rawEntry {
	tb.Helper()
	var out []rawEntry
	err := db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefix), kv.ScanOptions{}, func(k, v []byte) error {
			out = append(out, rawEntry{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// timeKey is prefix, ns as 8 big-endian bytes, then id: the index keys.
func timeKey(prefix string, ns int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64([]byte(prefix), uint64(ns)), id...)
}

// TestStoredLayout pins the keys and values the queue writes (keys.go), so
// a data directory written by an earlier version reads the same on any
// kv.DB: the item under rq/i/ as a format byte and JSON, an empty index
// entry under rq/a/ (open) or rq/c/ (closed) keyed by time and id, and the
// cursor as 8 big-endian bytes.
func TestStoredLayout(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	d := s.decide(s.pay("acc_1", "fp_1", 60_000, "USD"))
	if n := s.sync(); n != 1 {
		t.Fatalf("sync opened %d items, want 1", n)
	}
	rec, err := s.store.Get(ctx, d.DecisionID)
	if err != nil {
		t.Fatal(err)
	}
	id := review.ItemID(d.DecisionID)
	db := s.store.KV()

	cursor, err := kv.Get(ctx, db, []byte("rq/cursor"))
	if err != nil {
		t.Fatal(err)
	}
	if want := binary.BigEndian.AppendUint64(nil, rec.Seq+1); !bytes.Equal(cursor, want) {
		t.Errorf("rq/cursor = %x, want %x", cursor, want)
	}

	items := scanRaw(t, db, "rq/i/")
	if len(items) != 1 || string(items[0].key) != "rq/i/"+id {
		t.Fatalf("rq/i/ holds %q, want the one item %s", items, id)
	}
	v := items[0].value
	var it review.Item
	if len(v) == 0 || v[0] != 0x01 || json.Unmarshal(v[1:], &it) != nil {
		t.Fatalf("item value %q, want 0x01 then JSON", v)
	}
	if it.ID != id || it.DecisionID != d.DecisionID || it.Status != review.StatusOpen {
		t.Errorf("stored item = %+v", it)
	}
	wantActive := []rawEntry{{timeKey("rq/a/", it.OpenedAt.UnixNano(), id), nil}}
	if got := scanRaw(t, db, "rq/a/"); !equalRaw(got, wantActive) {
		t.Errorf("rq/a/ = %q, want %q", got, wantActive)
	}

	s.must(http.StatusOK, "ana", "POST", "/admin/reviews/"+id+"/claim", nil, nil)
	s.must(http.StatusOK, "ana", "POST", "/admin/reviews/"+id+"/close", map[string]any{"resolution": "unsure"}, nil)
	closed, err := s.queue.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := scanRaw(t, db, "rq/a/"); len(got) != 0 {
		t.Errorf("rq/a/ after the close = %q, want nothing", got)
	}
	wantClosed := []rawEntry{{timeKey("rq/c/", closed.ClosedAt.UnixNano(), id), nil}}
	if got := scanRaw(t, db, "rq/c/"); !equalRaw(got, wantClosed) {
		t.Errorf("rq/c/ = %q, want %q", got, wantClosed)
	}
}

// equalRaw compares entries; a nil and an empty value are the same.
func equalRaw(a, b []rawEntry) bool {
	return slices.EqualFunc(a, b, func(x, y rawEntry) bool {
		return bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value)
	})
}
