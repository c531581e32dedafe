package lists_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/lists"
)

// Values as the release before stored types wrote them: the API's JSON of
// List (with its item count) and of Item with the list's name, and no
// version member.
var preVersionValues = map[string]string{
	"lm/cards":             `{"name":"cards","kind":"string","description":"filled by fraud feedback","author":"limits","created_at":"2026-01-02T03:04:05Z","items":0}`,
	"lm/ips":               `{"name":"ips","kind":"cidr","created_at":"2026-01-02T03:04:05.123456789Z","items":3}`,
	"li/cards\x00fp_1":     `{"list":"cards","value":"fp_1","reason":"fraud on decision d_1","author":"analyst","created_at":"2026-01-02T03:04:06Z"}`,
	"li/cards\x00fp_gone":  `{"list":"cards","value":"fp_gone","created_at":"2026-01-02T03:04:06Z","expires_at":"2026-01-03T00:00:00Z"}`,
	"li/ips\x0010.0.0.0/8": `{"list":"ips","value":"10.0.0.0/8","created_at":"2026-01-02T03:04:07Z","expires_at":"2099-01-01T00:00:00Z"}`,
}

// TestListsReadPreVersionValues: a data dir written before the stored
// format had a version opens and answers the same.
func TestListsReadPreVersionValues(t *testing.T) {
	db := openDB(t, t.TempDir())
	writeRaw(t, db, preVersionValues)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	l := newLists(t, db, func() time.Time { return now })

	cards, err := l.Get("cards")
	if err != nil {
		t.Fatal(err)
	}
	want := lists.List{Name: "cards", Kind: "string", Description: "filled by fraud feedback", Author: "limits",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Items: 1}
	if !cards.CreatedAt.Equal(want.CreatedAt) || cards.Name != want.Name || cards.Kind != want.Kind ||
		cards.Description != want.Description || cards.Author != want.Author || cards.Items != want.Items {
		t.Errorf("Get(cards) = %+v, want %+v", cards, want)
	}
	for _, c := range []struct {
		list, value string
		want        bool
	}{
		{"cards", "fp_1", true},
		{"cards", "fp_gone", false}, // expired
		{"ips", "10.1.2.3", true},
		{"ips", "11.0.0.1", false},
	} {
		if got := l.Contains(c.list, c.value); got != c.want {
			t.Errorf("Contains(%s, %s) = %v, want %v", c.list, c.value, got, c.want)
		}
	}
	items, _, err := l.Items("cards", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Reason != "fraud on decision d_1" || items[0].Author != "analyst" {
		t.Errorf("Items(cards) = %+v, want fp_1 with its reason and author", items)
	}
}

// TestListsWriteVersionedValues: what is written now carries the version
// and no item count, and reads back.
func TestListsWriteVersionedValues(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	l := newLists(t, db, nil)
	if _, err := l.Put(lists.List{Name: "cards", Kind: "string", Items: 99}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddItems("cards", []lists.Item{{Value: "fp_1", Reason: "r"}}); err != nil {
		t.Fatal(err)
	}
	raw := readRaw(t, db)
	if v := raw["lm/cards"]; !strings.HasPrefix(v, `{"v":1,`) || strings.Contains(v, "items") {
		t.Errorf("stored list = %s, want version 1 and no item count", v)
	}
	if v := raw["li/cards\x00fp_1"]; !strings.HasPrefix(v, `{"v":1,"list":"cards","value":"fp_1"`) {
		t.Errorf("stored item = %s, want version 1 with its list", v)
	}
	if !newLists(t, db, nil).Contains("cards", "fp_1") {
		t.Error("item not read back")
	}
}

// TestListsRefuseNewerVersion: a value from a later build is an error on
// Load, not a silently empty list.
func TestListsRefuseNewerVersion(t *testing.T) {
	for key, value := range map[string]string{
		"lm/cards":         `{"v":2,"name":"cards","kind":"string","created_at":"2026-01-02T03:04:05Z"}`,
		"li/cards\x00fp_1": `{"v":2,"list":"cards","value":"fp_1","created_at":"2026-01-02T03:04:06Z"}`,
		"li/cards\x00fp_2": `{"list":`,
	} {
		t.Run(key, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			writeRaw(t, db, map[string]string{key: value})
			err := lists.New(db, nil).Load()
			if err == nil {
				t.Fatalf("Load of %s succeeded, want an error", value)
			}
		})
	}
}

func writeRaw(tb testing.TB, db kv.DB, values map[string]string) {
	tb.Helper()
	err := db.Update(context.Background(), func(tx kv.Tx) error {
		for k, v := range values {
			if err := tx.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// readRaw returns every stored list record (prefix "l").
func readRaw(tb testing.TB, db kv.DB) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte("l"), kv.ScanOptions{}, func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
