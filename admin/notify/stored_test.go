package notify_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/riskengine/risk/admin/notify"
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

// hookTimeKey is prefix, hook id, 0, ns as 8 big-endian bytes, then the
// event id: the outbox and deliveries log keys.
func hookTimeKey(prefix, hookID string, ns int64, eventID string) string {
	k := binary.BigEndian.AppendUint64([]byte(prefix+hookID+"\x00"), uint64(ns))
	return string(k) + eventID
}

// decodeJSON decodes a value stored as the format byte 0x01 then JSON.
func decodeJSON(tb testing.TB, what string, v []byte, out any) {
	tb.Helper()
	if len(v) == 0 || v[0] != 0x01 {
		tb.Fatalf("%s = %q, want 0x01 then JSON", what, v)
	}
	if err := json.Unmarshal(v[1:], out); err != nil {
		tb.Fatalf("%s = %q: %v", what, v, err)
	}
}

// TestStoredLayout pins the keys and values the notifier writes (keys.go),
// so a data directory written by an earlier version reads the same on any
// kv.DB: the hook, the event as delivered, the outbox entry keyed by hook,
// due time and event, the deliveries log entry, and the cursor.
func TestStoredLayout(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	db := s.store.KV()
	rc := newReceiver(t, ok)
	h := s.hook(rc.URL+"/hook", notify.EventDenied)

	hooks := scanRaw(t, db, "wh/h/")
	if len(hooks) != 1 || string(hooks[0].key) != "wh/h/"+h.ID {
		t.Fatalf("wh/h/ holds %q, want the one hook %s", hooks, h.ID)
	}
	var hook notify.Hook
	decodeJSON(t, "hook", hooks[0].value, &hook)
	if hook.ID != h.ID || hook.Secret != h.Secret {
		t.Errorf("stored hook = %+v, want id %s with its secret", hook, h.ID)
	}

	rec, err := s.store.Get(ctx, s.decide(150000).ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.sync(); n != 1 {
		t.Fatalf("sync stored %d events, want 1", n)
	}
	cursor, err := kv.Get(ctx, db, []byte("wh/cursor"))
	if err != nil {
		t.Fatal(err)
	}
	if want := binary.BigEndian.AppendUint64(nil, rec.Seq+1); !bytes.Equal(cursor, want) {
		t.Errorf("wh/cursor = %x, want %x", cursor, want)
	}
	if audit, err := kv.Get(ctx, db, []byte("wh/audit")); err != nil || len(audit) != 8 {
		t.Errorf("wh/audit = %x, %v; want 8 bytes", audit, err)
	}

	eventID := "evt_" + strings.TrimPrefix(rec.ID, "dec_") + "_denied"
	events := scanRaw(t, db, "wh/e/")
	if len(events) != 1 || string(events[0].key) != "wh/e/"+eventID {
		t.Fatalf("wh/e/ holds %q, want the one event %s", events, eventID)
	}
	var ev notify.Event
	if err := json.Unmarshal(events[0].value, &ev); err != nil || ev.ID != eventID || ev.Type != notify.EventDenied {
		t.Errorf("stored event = %q (%v), want the body as delivered, raw JSON", events[0].value, err)
	}

	now := s.clock.now().UnixNano()
	due := scanRaw(t, db, "wh/q/")
	if len(due) != 1 || string(due[0].key) != hookTimeKey("wh/q/", h.ID, now, eventID) {
		t.Fatalf("wh/q/ holds %q, want one entry due now for %s", due, eventID)
	}
	var task struct {
		EventID  string `json:"event_id"`
		HookID   string `json:"hook_id"`
		Type     string `json:"type"`
		Attempts int    `json:"attempts"`
	}
	decodeJSON(t, "outbox entry", due[0].value, &task)
	if task.EventID != eventID || task.HookID != h.ID || task.Type != notify.EventDenied || task.Attempts != 0 {
		t.Errorf("outbox entry = %+v", task)
	}

	s.deliver()
	if got := scanRaw(t, db, "wh/q/"); len(got) != 0 {
		t.Errorf("wh/q/ after the delivery = %q, want nothing", got)
	}
	log := scanRaw(t, db, "wh/l/")
	if len(log) != 1 || string(log[0].key) != hookTimeKey("wh/l/", h.ID, now, eventID) {
		t.Fatalf("wh/l/ holds %q, want the one attempt at now for %s", log, eventID)
	}
	var a notify.Attempt
	decodeJSON(t, "attempt", log[0].value, &a)
	if a.EventID != eventID || !a.OK || a.Attempt != 1 {
		t.Errorf("logged attempt = %+v", a)
	}
}
