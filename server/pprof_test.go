package server_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPprofOutlivesRequestTimeout: a CPU profile runs for its seconds on
// the real http.Server, past the request timeout (sized for payments) and
// the write timeout derived from it; too long a profile is refused.
func TestPprofOutlivesRequestTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	e := newEdge(t, edgeOptions{auth: roleKeys, timeout: 500 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	t.Cleanup(func() { ln.Close(); <-served })
	get := func(path, key string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	start := time.Now()
	code, body := get("/debug/pprof/profile?seconds=2", "admin-key")
	if code != http.StatusOK || len(body) == 0 || time.Since(start) < 2*time.Second {
		t.Errorf("2 s profile = %d, %d bytes after %v", code, len(body), time.Since(start))
	}
	if code, body := get("/debug/pprof/profile?seconds=61", "admin-key"); code != http.StatusBadRequest {
		t.Errorf("61 s profile = %d %s, want 400", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1", "admin-key"); code != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("goroutine profile = %d", code)
	}
	if code, _ := get("/debug/pprof/goroutine?debug=1", "analyst-key"); code != http.StatusForbidden {
		t.Errorf("analyst on pprof = %d, want 403", code)
	}
}
