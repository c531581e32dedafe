package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/server/loadgen"
)

// received is one request as a fake target saw it.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// target is a fake decision service that records every request and answers
// with respond.
type target struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newTarget(tb testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *target {
	tb.Helper()
	t := &target{}
	t.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		t.mu.Lock()
		t.reqs = append(t.reqs, received{path: r.URL.Path, header: r.Header.Clone(), body: body})
		t.mu.Unlock()
		respond(w, r)
	}))
	tb.Cleanup(t.Close)
	return t
}

func (t *target) received() []received {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]received(nil), t.reqs...)
}

// allow answers every request with an allow decision.
func allow(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"decision_id":"d1","decision":"allow","score":3}`)
}

// runLoad runs the loadgen command with args plus --target and --out, and
// returns its output and the parsed JSON report.
func runLoad(tb testing.TB, ctx context.Context, targetURL string, args ...string) (string, loadgen.Report, error) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "report.json")
	var out bytes.Buffer
	args = append([]string{"--target", targetURL, "--out", path}, args...)
	err := loadgen.Run(ctx, args, &out)
	var rep loadgen.Report
	if b, readErr := os.ReadFile(path); readErr == nil {
		if jsonErr := json.Unmarshal(b, &rep); jsonErr != nil {
			tb.Fatalf("report %s is not valid JSON: %v\n%s", path, jsonErr, b)
		}
	}
	return out.String(), rep, err
}

// mustRun is runLoad for runs that must succeed.
func mustRun(tb testing.TB, targetURL string, args ...string) (string, loadgen.Report) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, rep, err := runLoad(tb, ctx, targetURL, args...)
	if err != nil {
		tb.Fatalf("Run: %v\noutput:\n%s", err, out)
	}
	return out, rep
}
