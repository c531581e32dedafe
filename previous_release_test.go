package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The previous release's fixture (testdata/datadir-previous/README.md).
const (
	previousDir        = "testdata/datadir-previous"
	previousGatewayKey = "rk_2ektdwtx3eogsbudbo4llumfb7kiya6xefq74as4y26dfeq6s3pa"
)

// TestPreviousReleaseDataDir: a data directory written by the previous
// release opens with this build and answers the same: every decision's
// explanation, a retry's replay, its gateway key, list, published rule set
// version, limits policy and trust, and the feature history of its cards.
func TestPreviousReleaseDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	untar(t, filepath.Join(previousDir, "data.tar.gz"), dir)
	srv := startServer(t, buildBinary(t), filepath.Join(dir, "data"))

	files, err := filepath.Glob(filepath.Join(previousDir, "expect", "decision_*.json"))
	if err != nil || len(files) != 12 {
		t.Fatalf("fixture: %d expectations (%v), want 12", len(files), err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		id, _ := want["decision_id"].(string)
		var got map[string]any
		if code := call(t, testAdminKey, http.MethodGet, srv.url+"/v1/decisions/"+id, nil, &got); code != http.StatusOK {
			t.Fatalf("%s: GET = %d", filepath.Base(f), code)
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			t.Errorf("%s: the explanation changed:\n got %s\nwant %s", filepath.Base(f), gb, raw)
		}
		// The gateway's retry, with the old key, replays the decision.
		var d decisionJSON
		if code := call(t, previousGatewayKey, http.MethodPost, srv.url+"/v1/decisions", want["request"], &d); code != http.StatusOK || d.DecisionID != id {
			t.Errorf("%s: retry = %d %s, want 200 %s", filepath.Base(f), code, d.DecisionID, id)
		}
	}

	// The next payment on fp_a, at 10:30 on the fixture's day, sees its
	// four earlier payments in the last hour, none in the last ten minutes.
	next := clusterPayment("tx_new_1", "fp_a", 1000, time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC))
	next["account"] = map[string]any{"id": "acc_fp_a", "email": "fp_a@example.com", "created_at": "2025-01-02T00:00:00Z", "country": "US"}
	d := decide(t, srv, next)
	if d.RulesetVersion != 2 {
		t.Errorf("live rule set version %d, want 2 (published before the upgrade)", d.RulesetVersion)
	}
	exp := explain(t, srv, d.DecisionID)
	for name, want := range map[string]float64{"card_attempts_1h": 4, "card_attempts_10m": 0} {
		if got, ok := exp.feature(name); !ok || got != want {
			t.Errorf("%s of fp_a = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if exp.Limits.Trust != 0.25 {
		t.Errorf("trust of acc_fp_a = %v, want 0.25 (the fraud label before the upgrade)", exp.Limits.Trust)
	}
	stolen := decide(t, srv, clusterPayment("tx_new_2", "fp_old_stolen", 100, time.Now()))
	if stolen.Decision != "deny" {
		t.Errorf("card on the old block list: %s, want deny", stolen.Decision)
	}
	var pol struct {
		Version int `json:"version"`
		Trust   struct {
			Initial float64 `json:"initial"`
		} `json:"trust"`
	}
	if code := call(t, testAdminKey, http.MethodGet, srv.url+"/admin/limits/policy", nil, &pol); code != http.StatusOK || pol.Version != 1 || pol.Trust.Initial != 0.9 {
		t.Errorf("limits policy = %d version %d initial trust %v, want version 1 with 0.9", code, pol.Version, pol.Trust.Initial)
	}
	srv.stop()
}

// untar extracts a .tar.gz into dir.
func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			t.Fatalf("fixture entry %q leaves the directory", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg, tar.TypeGNUSparse:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
