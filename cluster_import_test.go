package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/postgres"
)

// TestImportPlanCoversKeyspace: every registered key prefix is either
// copied, reset as a cursor or skipped by `risk cluster import`, so a new
// store cannot be left behind by a move silently.
func TestImportPlanCoversKeyspace(t *testing.T) {
	for _, e := range keyspace.All() {
		if _, ok := importPlan[e.Key]; !ok {
			t.Errorf("importPlan does not place %s (%s, %s): copy it, reset it or skip it", e.Key, e.Owner, e.What)
		}
	}
	if len(importPlan) != len(keyspace.All()) {
		t.Errorf("importPlan has %d entries, keyspace.All %d", len(importPlan), len(keyspace.All()))
	}
}

// runCluster runs `risk cluster ARGS...` and returns its output and exit
// code.
func runCluster(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := runCLI(bin, "", append([]string{"cluster"}, args...)...)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("risk cluster %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out, code
}

// importCounts reads the summary an import prints.
func importCounts(t *testing.T, out string) importSummary {
	t.Helper()
	i := strings.Index(out, "{\n")
	var s importSummary
	if i < 0 || json.Unmarshal([]byte(out[i:]), &s) != nil {
		t.Fatalf("no import summary in:\n%s", out)
	}
	return s
}

// TestClusterImport moves a single node into a three-node cluster: its
// decisions, labels, rules, lists, keys and audit trail, and its feature
// state. An import stopped midway and run again ends with the same counts,
// verify sees a missing decision, and a cluster holding decisions from
// elsewhere is refused without --merge.
func TestClusterImport(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	single := startServer(t, bin, dir)
	env := newClusterEnv(t, bin)

	// The single node's state: a gateway key, a blocked card, a published
	// rule change, a stream of decisions and a feedback label.
	var key struct {
		Key string `json:"key"`
	}
	if code := call(t, testAdminKey, http.MethodPost, single.url+"/admin/keys", map[string]any{"name": "gw", "role": "gateway"}, &key); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("create key = %d", code)
	}
	if code := call(t, testAdminKey, http.MethodPost, single.url+"/admin/lists/blocked_cards/items", map[string]any{"value": "fp_imp_stolen"}, nil); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("add list item = %d", code)
	}
	if code := call(t, testAdminKey, http.MethodPut, single.url+"/admin/ruleset/draft", map[string]any{"challenge_threshold": 55}, nil); code != http.StatusOK {
		t.Fatalf("update draft = %d", code)
	}
	var ver struct {
		Version int64 `json:"version"`
	}
	if code := call(t, testAdminKey, http.MethodPost, single.url+"/admin/ruleset/publish", map[string]any{"comment": "before the move"}, &ver); (code != http.StatusOK && code != http.StatusCreated) || ver.Version < 2 {
		t.Fatalf("publish = %d, version %d", code, ver.Version)
	}
	start := time.Now().UTC().Add(-20 * time.Minute)
	cards := []string{"fp_imp_a", "fp_imp_b", "fp_imp_c", "fp_imp_stolen"}
	const n = 40
	var ids []string
	for i := range n {
		p := clusterPayment(fmt.Sprintf("tx_imp_%d", i), cards[i%len(cards)], 500+(i%5)*3000, start.Add(time.Duration(i)*30*time.Second))
		ids = append(ids, decide(t, single, p).DecisionID)
	}
	if code := call(t, key.Key, http.MethodPost, single.url+"/v1/decisions/"+ids[4]+"/feedback", map[string]any{"label": "fraud"}, nil); code != http.StatusOK {
		t.Fatalf("feedback = %d", code)
	}
	want := map[string]map[string]any{}
	for _, id := range ids {
		var m map[string]any
		if code := call(t, testAdminKey, http.MethodGet, single.url+"/v1/decisions/"+id, nil, &m); code != http.StatusOK {
			t.Fatalf("GET decision %s = %d", id, code)
		}
		want[id] = m
		if ls, _ := m["labels"].([]any); id == ids[4] && len(ls) != 1 {
			t.Fatalf("labelled decision: labels %v", m["labels"])
		}
	}
	single.stop()
	twin := filepath.Join(t.TempDir(), "twin")
	if err := os.CopyFS(twin, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	// Import, stopped after 15 new decisions, then run again, then once
	// more: 40 decisions in all, and nothing new the third time.
	imp := append([]string{"import", "--data", dir}, env.flags...)
	out, code := runCluster(t, bin, append(imp, "--limit", "15")...)
	m := regexp.MustCompile(`stopped after (\d+) new decisions`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("import --limit 15: exit %d\n%s", code, out)
	}
	first, _ := strconv.Atoi(m[1])
	if first < 15 || first >= n {
		t.Errorf("import --limit 15 imported %d decisions", first)
	}
	out, code = runCluster(t, bin, imp...)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	t.Logf("import:\n%s", out)
	if !strings.Contains(out, "import decisions:") || !strings.Contains(out, "/s") {
		t.Errorf("no progress line in:\n%s", out)
	}
	s := importCounts(t, out)
	if first+s.Imported != n || s.Present != first || s.Conflicts != 0 {
		t.Errorf("second run: %+v after %d; want the remaining %d of %d decisions", s, first, n-first, n)
	}
	if s.Keys[keyspace.APIKey] == 0 || s.Keys[keyspace.ListItem] == 0 || s.Keys[keyspace.RuleSetVersion] < 2 || s.Keys[keyspace.Audit] == 0 {
		t.Errorf("keys copied: %v; want API keys, list items, rule versions and audit entries", s.Keys)
	}
	out, code = runCluster(t, bin, imp...)
	if s := importCounts(t, out); code != 0 || s.Imported != 0 || s.Present != n || s.Labels != 0 {
		t.Errorf("third run: exit %d, %+v; want all %d present", code, s, n)
	}

	// verify: equal; a decision deleted from PostgreSQL is found; an
	// import puts it back.
	ver1 := append([]string{"verify", "--data", dir}, env.flags...)
	if out, code := runCluster(t, bin, ver1...); code != 0 {
		t.Fatalf("verify after import: exit %d\n%s", code, out)
	}
	deleteDecision(t, env, ids[7])
	out, code = runCluster(t, bin, ver1...)
	t.Logf("verify after a deletion:\n%s", out)
	if code != 1 || !strings.Contains(out, ids[7]) || !strings.Contains(out, "DIFF decisions: single node 40, cluster 39") {
		t.Errorf("verify after a deleted decision: exit %d, want 1 naming %s\n%s", code, ids[7], out)
	}
	out, code = runCluster(t, bin, imp...)
	if s := importCounts(t, out); code != 0 || s.Imported != 1 {
		t.Errorf("import after the deletion: exit %d, %+v; want the one decision back", code, s)
	}
	if out, code := runCluster(t, bin, ver1...); code != 0 {
		t.Errorf("verify after the repair: exit %d\n%s", code, out)
	}

	// Redis emptied: verify sees the features missing, rebuild-features
	// brings them back.
	dropRedisPrefix(t, env.redis, env.prefix)
	if out, code := runCluster(t, bin, ver1...); code != 1 || !strings.Contains(out, "DIFF features of") {
		t.Errorf("verify with an empty Redis: exit %d, want 1 and feature differences\n%s", code, out)
	}
	out, code = runCluster(t, bin, append([]string{"rebuild-features"}, env.flags...)...)
	if code != 0 || !strings.Contains(out, "rebuild features: 40/40 records") || !strings.Contains(out, "feature state rebuilt") {
		t.Errorf("rebuild-features: exit %d\n%s", code, out)
	}
	if out, code := runCluster(t, bin, ver1...); code != 0 {
		t.Errorf("verify after rebuild-features: exit %d\n%s", code, out)
	}

	// Three nodes on the imported cluster, and the single node's twin.
	nodes := env.nodes(3)
	for i, id := range ids {
		var got map[string]any
		if code := call(t, testAdminKey, http.MethodGet, nodes[i%3].url+"/v1/decisions/"+id, nil, &got); code != http.StatusOK {
			t.Fatalf("node %d: GET decision %s = %d", i%3, id, code)
		}
		if !reflect.DeepEqual(got, want[id]) {
			t.Errorf("decision %s on node %d:\n got %v\nwant %v", id, i%3, got, want[id])
		}
	}
	// A retry of an old transaction with the old gateway key replays it.
	old := clusterPayment("tx_imp_5", cards[5%len(cards)], 500, start.Add(5*30*time.Second))
	var replay decisionJSON
	if code := call(t, key.Key, http.MethodPost, nodes[2].url+"/v1/decisions", old, &replay); code != http.StatusOK || replay.DecisionID != ids[5] {
		t.Errorf("retry of tx_imp_5 with the old gateway key: %d, decision %q; want 200 and %s", code, replay.DecisionID, ids[5])
	}
	// The next payment on an old card sees what the single node sees.
	twinNode := startServer(t, bin, twin)
	next := clusterPayment("tx_imp_next", "fp_imp_a", 900, time.Now().UTC())
	a := explain(t, twinNode, decide(t, twinNode, next).DecisionID)
	b := explain(t, nodes[1], decide(t, nodes[1], next).DecisionID)
	if len(a.Features) == 0 || !reflect.DeepEqual(a.Features, b.Features) || a.Decision != b.Decision || a.Score != b.Score || a.Limits != b.Limits ||
		b.RulesetVersion != ver.Version || a.RulesetVersion != ver.Version {
		t.Errorf("next payment on fp_imp_a (rule set version %d live):\nsingle node v%d %s %v %+v %+v\ncluster     v%d %s %v %+v %+v", ver.Version, a.RulesetVersion, a.Decision, a.Score, a.Features, a.Limits, b.RulesetVersion, b.Decision, b.Score, b.Features, b.Limits)
	}
	if v, _ := b.feature("card_attempts_10m"); v < 4 {
		t.Errorf("card_attempts_10m on the next payment on fp_imp_a = %v, want the imported attempts of the last 10 minutes", v)
	}
	t.Logf("limits of the next payment: single node %+v, cluster %+v", a.Limits, b.Limits)
	// The audit trail: the single node's entries and the imports'.
	var trail struct {
		Entries []struct {
			Action string `json:"action"`
		} `json:"entries"`
	}
	if code := call(t, testAdminKey, http.MethodGet, nodes[0].url+"/admin/audit?limit=500", nil, &trail); code != http.StatusOK {
		t.Fatalf("GET audit = %d", code)
	}
	actions := map[string]int{}
	for _, e := range trail.Entries {
		actions[e.Action]++
	}
	for _, a := range []string{"key.create", "ruleset.publish", "cluster.import"} {
		if actions[a] == 0 {
			t.Errorf("audit trail lacks %s: %v", a, actions)
		}
	}

	// Another single node is refused without --merge, taken with it.
	otherDir := t.TempDir()
	other := startServer(t, bin, otherDir)
	decide(t, other, clusterPayment("tx_other_1", "fp_other", 100, time.Now().UTC()))
	other.stop()
	backup := filepath.Join(t.TempDir(), "other.backup")
	if out, err := runCLI(bin, "", "backup", "--out", backup, "--data", otherDir); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	imp2 := append([]string{"import", "--backup", backup}, env.flags...)
	if out, code := runCluster(t, bin, imp2...); code != 1 || !strings.Contains(out, "--merge") {
		t.Errorf("import of another store: exit %d, want 1 and a hint at --merge\n%s", code, out)
	}
	out, code = runCluster(t, bin, append(imp2, "--merge", "--decisions-only")...)
	if s := importCounts(t, out); code != 0 || s.Imported != 1 {
		t.Errorf("import --merge of another store: exit %d, %+v; want its one decision", code, s)
	}
}

// deleteDecision removes a decision (and its transaction id claim) from
// the cluster's PostgreSQL behind the engine's back.
func deleteDecision(t *testing.T, env *clusterEnv, id string) {
	t.Helper()
	pgURL, schema, err := splitSchema(env.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Options{URL: pgURL, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"DELETE FROM decision_txids WHERE decision_id = $1",
		"DELETE FROM decisions WHERE decision_id = $1",
	} {
		if _, err := db.Pool.Exec(ctx, q, id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
