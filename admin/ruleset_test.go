package admin_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

type versionInfo struct {
	Version            int64     `json:"version"`
	Author             string    `json:"author"`
	CreatedAt          time.Time `json:"created_at"`
	Comment            string    `json:"comment"`
	Hash               string    `json:"hash"`
	ChallengeThreshold int       `json:"challenge_threshold"`
	DenyThreshold      int       `json:"deny_threshold"`
	Rules              int       `json:"rules"`
	Live               bool      `json:"live"`
	Spec               rules.Spec
}

type diffJSON struct {
	From    string       `json:"from"`
	To      string       `json:"to"`
	Added   []rules.Rule `json:"added"`
	Removed []rules.Rule `json:"removed"`
	Changed []struct {
		ID     string     `json:"id"`
		Fields []string   `json:"fields"`
		Before rules.Rule `json:"before"`
		After  rules.Rule `json:"after"`
	} `json:"changed"`
	Thresholds []struct {
		Name          string
		Before, After int
	} `json:"thresholds"`
}

func ids(rs []rules.Rule) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestPublishAllOrNothing(t *testing.T) {
	h := newHarness(t)
	// A rule that compiled when saved stops compiling when the feature it
	// reads is deleted (allowed: no live rule reads it).
	h.must(http.StatusCreated, http.MethodPost, "/admin/features", map[string]any{
		"name": "merchant_attempts_1h", "entity": "merchant.id", "aggregate": "count", "window": "1h",
	}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", rule{ID: "merchant_burst", Expression: "features.merchant_attempts_1h > 100", Action: "challenge"}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", rule{ID: "huge_amount", Expression: "amount > 10000000", Action: "deny"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/features/merchant_attempts_1h", nil, nil)

	errs := h.errorsOf(http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": "burst"})
	want := []rules.Error{{Rule: "merchant_burst", Field: "expression", Line: 1, Column: 10, Message: "unknown name `features.merchant_attempts_1h`; did you mean `features.card_attempts_1h`"}}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors =\n%s\nwant\n%s", jsonText(errs), jsonText(want))
	}
	// Nothing changed: still version 1, and the good rule is not live.
	if v := h.liveVersion(); v != 1 {
		t.Fatalf("live version = %d, want 1", v)
	}
	var list struct{ Versions []versionInfo }
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/versions", nil, &list)
	if len(list.Versions) != 1 {
		t.Errorf("%d versions, want 1", len(list.Versions))
	}
	if d := h.decide(with(payment(), "amount", 20000000)); d.Decision != "allow" || d.RulesetVersion != 1 {
		t.Errorf("decision = %+v, want allow on version 1", d)
	}

	// Fix the draft: publish goes through, live at once.
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/rules/merchant_burst", nil, nil)
	var v versionInfo
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": "huge amounts"}, &v)
	if v.Version != 2 || v.Author != "dev" || v.Comment != "huge amounts" || v.Rules != 17 || len(v.Hash) != 64 || !v.Live {
		t.Errorf("published %+v", v)
	}
	if d := h.decide(with(payment(), "amount", 20000000)); d.Decision != "deny" || d.RulesetVersion != 2 {
		t.Errorf("decision = %+v, want deny on version 2", d)
	}
}

func TestVersionsDiffRollback(t *testing.T) {
	h := newHarness(t)
	// Version 2: a new rule, a changed rule, a removed rule, new thresholds.
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", rule{ID: "huge_amount", Expression: "amount > 10000000", Action: "deny"}, nil)
	var r rule
	h.must(http.StatusOK, http.MethodGet, "/admin/rules/new_account_large_amount", nil, &r)
	r.Score = 45
	h.must(http.StatusOK, http.MethodPut, "/admin/rules/new_account_large_amount", r, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/rules/night_large_amount", nil, nil)
	h.must(http.StatusOK, http.MethodPut, "/admin/ruleset/draft", map[string]int{"deny_threshold": 90}, nil)

	var d diffJSON
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/diff", nil, &d) // live -> draft
	if d.From != "live" || d.To != "draft" {
		t.Errorf("diff from %q to %q", d.From, d.To)
	}
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": "v2"}, nil)
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/diff?from=1&to=2", nil, &d)
	if got := ids(d.Added); !reflect.DeepEqual(got, []string{"huge_amount"}) {
		t.Errorf("added %v", got)
	}
	if got := ids(d.Removed); !reflect.DeepEqual(got, []string{"night_large_amount"}) {
		t.Errorf("removed %v", got)
	}
	if len(d.Changed) != 1 || d.Changed[0].ID != "new_account_large_amount" || !reflect.DeepEqual(d.Changed[0].Fields, []string{"score"}) ||
		d.Changed[0].Before.Score != 30 || d.Changed[0].After.Score != 45 || d.Changed[0].After.Version != 2 {
		t.Errorf("changed %+v", d.Changed)
	}
	if len(d.Thresholds) != 1 || d.Thresholds[0].Name != "deny_threshold" || d.Thresholds[0].Before != 80 || d.Thresholds[0].After != 90 {
		t.Errorf("thresholds %+v", d.Thresholds)
	}
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/diff?from=live&to=draft", nil, &d)
	if len(d.Added)+len(d.Removed)+len(d.Changed)+len(d.Thresholds) != 0 {
		t.Errorf("draft differs from live right after publish: %+v", d)
	}

	var list struct {
		LiveVersion int64 `json:"live_version"`
		Versions    []versionInfo
		NextBefore  int64 `json:"next_before"`
	}
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/versions?limit=1", nil, &list)
	if list.LiveVersion != 2 || len(list.Versions) != 1 || list.Versions[0].Version != 2 || !list.Versions[0].Live || list.NextBefore != 2 {
		t.Errorf("versions page 1 = %+v", list)
	}
	list.NextBefore = 0
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/versions?limit=1&before=2", nil, &list)
	if len(list.Versions) != 1 || list.Versions[0].Version != 1 || list.Versions[0].Live || list.NextBefore != 0 {
		t.Errorf("versions page 2 = %+v", list)
	}
	var v1 versionInfo
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/versions/1", nil, &v1)
	if len(v1.Spec.Rules) != 16 || v1.Spec.DenyThreshold != 80 || v1.Author != "startup" {
		t.Errorf("version 1 = %+v", v1)
	}
	h.must(http.StatusNotFound, http.MethodGet, "/admin/ruleset/versions/9", nil, nil)
	h.must(http.StatusBadRequest, http.MethodGet, "/admin/ruleset/versions/x", nil, nil)

	// Rollback to 1 publishes version 1's rules again as version 3; the
	// unchanged draft follows.
	huge := func() map[string]any { return with(payment(), "amount", 20000000) }
	if d := h.decide(huge()); d.Decision != "deny" {
		t.Fatalf("before rollback: %+v", d)
	}
	h.must(http.StatusConflict, http.MethodPost, "/admin/ruleset/rollback", map[string]int{"version": 2}, nil)
	h.must(http.StatusNotFound, http.MethodPost, "/admin/ruleset/rollback", map[string]int{"version": 7}, nil)
	h.must(http.StatusBadRequest, http.MethodPost, "/admin/ruleset/rollback", map[string]int{}, nil)
	var v3 versionInfo
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/rollback", map[string]int{"version": 1}, &v3)
	if v3.Version != 3 || v3.Comment != "rollback to version 1" || v3.Hash != v1.Hash {
		t.Errorf("rollback = %+v, want version 3 with version 1's hash %s", v3, v1.Hash)
	}
	if d := h.decide(huge()); d.Decision != "allow" || d.RulesetVersion != 3 {
		t.Errorf("after rollback: %+v, want allow on version 3", d)
	}
	var draft struct {
		BaseVersion int64 `json:"base_version"`
		Changed     bool
		Rules       []rule
	}
	h.must(http.StatusOK, http.MethodGet, "/admin/ruleset/draft", nil, &draft)
	if draft.BaseVersion != 3 || draft.Changed || len(draft.Rules) != 16 {
		t.Errorf("draft after rollback: base %d changed %v, %d rules", draft.BaseVersion, draft.Changed, len(draft.Rules))
	}
	// The rolled-back rule, edited again, gets a version it never had.
	h.must(http.StatusOK, http.MethodGet, "/admin/rules/new_account_large_amount", nil, &r)
	if r.Version != 1 {
		t.Fatalf("rolled back rule at version %d, want 1", r.Version)
	}
	r.Version = 0
	h.must(http.StatusOK, http.MethodPut, "/admin/rules/new_account_large_amount", r, &r)
	if r.Version != 3 {
		t.Errorf("edited after rollback: version %d, want 3", r.Version)
	}
}

func TestDraftThresholds(t *testing.T) {
	h := newHarness(t)
	var th map[string]int
	h.must(http.StatusOK, http.MethodPut, "/admin/ruleset/draft", map[string]int{"challenge_threshold": 30}, &th)
	if th["challenge_threshold"] != 30 || th["deny_threshold"] != 80 {
		t.Errorf("thresholds = %v", th)
	}
	errs := h.errorsOf(http.MethodPut, "/admin/ruleset/draft", map[string]int{"deny_threshold": 10})
	if len(errs) != 1 || errs[0].Field != "deny_threshold" {
		t.Errorf("errors = %+v", errs)
	}
	h.must(http.StatusBadRequest, http.MethodPut, "/admin/ruleset/draft", map[string]any{"deny_threshold": "high"}, nil)
	var v versionInfo
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", nil, &v)
	if v.ChallengeThreshold != 30 || v.DenyThreshold != 80 {
		t.Errorf("published thresholds %d/%d, want 30/80", v.ChallengeThreshold, v.DenyThreshold)
	}
}

func TestExportImport(t *testing.T) {
	h := newHarness(t)
	status, live := h.raw(http.MethodGet, "/admin/ruleset/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export = %d %s", status, live)
	}
	f, err := rules.ParseFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rules) != 16 || f.DenyThreshold != 80 || len(f.Lists) != 6 {
		t.Errorf("exported %d rules, deny %d, %d lists", len(f.Rules), f.DenyThreshold, len(f.Lists))
	}

	// A file with a bad rule changes nothing and answers every error.
	bad := strings.Replace(string(live), "expression: features.card_declines_24h >= 3", "expression: features.card_decline_24h >= 3", 1)
	bad = strings.Replace(bad, "action: allow", "action: permit", 1)
	errs := h.errorsOf(http.MethodPost, "/admin/ruleset/import", bad)
	want := []rules.Error{
		{Rule: "vip_account", Field: "action", Message: `unknown action "permit": use allow, challenge, deny, score or review`},
		{Rule: "repeated_declines", Field: "expression", Line: 1, Column: 10, Message: "unknown name `features.card_decline_24h`; did you mean `features.card_declines_24h`"},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors =\n%s\nwant\n%s", jsonText(errs), jsonText(want))
	}
	errs = h.errorsOf(http.MethodPost, "/admin/ruleset/import", "challenge_threshold: 1\nrulez: []\n")
	if len(errs) != 1 || errs[0].Field != "file" || !strings.Contains(errs[0].Message, "rulez") {
		t.Errorf("errors = %+v", errs)
	}

	// A good file replaces the draft; unchanged rules keep their version.
	edited := strings.Replace(string(live), "score: 30\n    mode: active\n    reason: new_account_amount", "score: 35\n    mode: active\n    reason: new_account_amount", 1)
	edited = strings.Replace(edited, "deny_threshold: 80", "deny_threshold: 85", 1)
	var res struct {
		Rules   int
		Changed []string
	}
	h.must(http.StatusOK, http.MethodPost, "/admin/ruleset/import", edited, &res)
	if res.Rules != 16 || !reflect.DeepEqual(res.Changed, []string{"new_account_large_amount"}) {
		t.Errorf("import = %+v", res)
	}
	var r rule
	h.must(http.StatusOK, http.MethodGet, "/admin/rules/new_account_large_amount", nil, &r)
	if r.Score != 35 || r.Version != 2 {
		t.Errorf("imported rule = %+v, want score 35 version 2", r)
	}
	h.must(http.StatusOK, http.MethodGet, "/admin/rules/blocked_card", nil, &r)
	if r.Version != 1 {
		t.Errorf("unchanged rule version = %d, want 1", r.Version)
	}
	_, draft := h.raw(http.MethodGet, "/admin/ruleset/export?draft=true", nil)
	if f, err = rules.ParseFile(draft); err != nil || f.DenyThreshold != 85 {
		t.Errorf("draft export: deny %d, err %v", f.DenyThreshold, err)
	}
	if v := h.liveVersion(); v != 1 {
		t.Errorf("import changed the live version to %d", v)
	}
	_, v1 := h.raw(http.MethodGet, "/admin/ruleset/export?version=1", nil)
	if string(v1) != string(live) {
		t.Errorf("export of version 1 differs from the live export")
	}
	h.must(http.StatusNotFound, http.MethodGet, "/admin/ruleset/export?version=5", nil, nil)
	h.must(http.StatusBadRequest, http.MethodGet, "/admin/ruleset/export?draft=maybe", nil, nil)
}

func TestCheckFileMatchesImport(t *testing.T) {
	// risk rules validate prints the errors CheckFile returns: the ones the
	// import endpoint answers with.
	data := []byte("challenge_threshold: 40\ndeny_threshold: 80\nrules:\n  - id: a\n    expression: card.contry == \"US\"\n    action: deny\n")
	defs, err := features.ParseDefinitions(features.Sample())
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.CheckFile(data, rules.Env{Features: names(defs)})
	var ce *rules.CompileError
	if !errors.As(err, &ce) || len(ce.Errors) != 1 {
		t.Fatalf("CheckFile = %v", err)
	}
	if got, want := ce.Errors[0].Error(), "rule \"a\": unknown name `card.contry`; did you mean `card.country` (1:6)"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	h := newHarness(t)
	errs := h.errorsOf(http.MethodPost, "/admin/ruleset/import", data)
	if len(errs) != 1 || errs[0] != *ce.Errors[0] {
		t.Errorf("import errors %+v, CheckFile %+v", errs, ce.Errors)
	}
}
