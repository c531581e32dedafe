package admin_test

import (
	"strings"
	"testing"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/rules"
)

// TestLoadRules pins the start-up policy: a file is published only when it
// differs from the live version (defaults filled in before comparing), its
// lists are seeded once and never overwritten, and with no file the live
// version stays.
func TestLoadRules(t *testing.T) {
	h := newHarness(t) // the sample is version 1
	env := rules.Env{Features: names(h.store.Definitions()), Lists: h.lists}
	var live *rules.Set
	setLive := func(s *rules.Set) { live = s }
	latest := func() int64 {
		v, err := h.versions.Latest()
		if err != nil {
			t.Fatal(err)
		}
		return v.Number
	}

	// The sample again, as a file: nothing published, version 1 live.
	if err := admin.LoadRules(h.versions, h.lists, env, rules.Sample(), "rules.yaml", setLive); err != nil {
		t.Fatal(err)
	}
	if latest() != 1 || live == nil || live.Version() != 1 {
		t.Fatalf("same file: latest %d, live %v; want 1 and 1", latest(), live)
	}

	// The same rules with the defaults written out: the same canonical spec.
	explicit := "rules:\n  - id: r1\n    expression: amount > 10\n    action: deny\n    mode: active\n    version: 1\n" +
		"lists:\n  - name: new_list\n    kind: string\n    items: [a, b]\n  - name: blocked_cards\n    kind: string\n    items: [zzz]\n"
	implicit := "rules:\n  - id: r1\n    expression: amount > 10\n    action: deny\n"
	if err := admin.LoadRules(h.versions, h.lists, env, []byte(explicit), "a.yaml", setLive); err != nil {
		t.Fatal(err)
	}
	if latest() != 2 || live.Version() != 2 {
		t.Fatalf("changed file: latest %d, live %d; want 2", latest(), live.Version())
	}
	if err := admin.LoadRules(h.versions, h.lists, env, []byte(implicit), "b.yaml", setLive); err != nil {
		t.Fatal(err)
	}
	if latest() != 2 || live.Version() != 2 {
		t.Errorf("same rules with defaults left out: latest %d, live %d; want 2 (no new version)", latest(), live.Version())
	}

	items, _, err := h.lists.Items("new_list", "", 10)
	if err != nil || len(items) != 2 || !strings.Contains(items[0].Reason, "a.yaml") {
		t.Errorf("seeded list: %v %v, want a and b seeded from a.yaml", items, err)
	}
	blocked, _, err := h.lists.Items("blocked_cards", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range blocked {
		if it.Value == "zzz" {
			t.Error("an existing list was overwritten by the seed")
		}
	}

	// No file: the latest version goes live, nothing is published.
	live = nil
	if err := admin.LoadRules(h.versions, h.lists, env, nil, "", setLive); err != nil {
		t.Fatal(err)
	}
	if latest() != 2 || live == nil || live.Version() != 2 {
		t.Errorf("no file: latest %d, live %v; want 2", latest(), live)
	}
}

// TestLoadDefinitions: a file replaces the definitions; without one the
// stored ones are kept (the sample is only for a store that has none).
func TestLoadDefinitions(t *testing.T) {
	h := newHarness(t)
	one := []byte("- name: card_attempts_1h\n  entity: card.fingerprint\n  aggregate: count\n  window: 1h\n")
	if err := admin.LoadDefinitions(t.Context(), h.store, one); err != nil {
		t.Fatal(err)
	}
	if err := admin.LoadDefinitions(t.Context(), h.store, nil); err != nil {
		t.Fatal(err)
	}
	if got := names(h.store.Definitions()); len(got) != 1 || got[0] != "card_attempts_1h" {
		t.Errorf("definitions %v, want the file's one kept", got)
	}
}
