package loadgen_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// rawTarget is a fake decision service on a bare listener, for answers
// net/http would never send. It reads each request and calls respond with
// the connection and the request's number (from 0, across connections);
// respond writes what it likes and returns whether to read another request
// from the connection.
type rawTarget struct {
	URL  string
	ln   net.Listener
	mu   sync.Mutex
	reqs []rawRequest
	conn []net.Conn // every accepted connection
	wg   sync.WaitGroup
}

// rawRequest is one request as a rawTarget read it.
type rawRequest struct {
	head string // request line and header lines, CRLF-terminated
	body []byte
	conn int // index of the connection it came on
}

func newRawTarget(tb testing.TB, respond func(c net.Conn, n int) bool) *rawTarget {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	t := &rawTarget{URL: "http://" + ln.Addr().String(), ln: ln}
	t.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.mu.Lock()
			id := len(t.conn)
			t.conn = append(t.conn, c)
			t.mu.Unlock()
			t.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := readRawRequest(br)
					if err != nil {
						return
					}
					req.conn = id
					t.mu.Lock()
					n := len(t.reqs)
					t.reqs = append(t.reqs, req)
					t.mu.Unlock()
					if !respond(c, n) {
						return
					}
				}
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		t.mu.Lock()
		for _, c := range t.conn {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return t
}

// readRawRequest reads a request with a Content-Length body.
func readRawRequest(br *bufio.Reader) (rawRequest, error) {
	var req rawRequest
	var head strings.Builder
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return req, err
		}
		if line == "\r\n" {
			break
		}
		head.WriteString(line)
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(value)); err != nil {
				return req, err
			}
		}
	}
	req.head = head.String()
	req.body = make([]byte, length)
	_, err := io.ReadFull(br, req.body)
	return req, err
}

func (t *rawTarget) received() []rawRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]rawRequest(nil), t.reqs...)
}

// conns returns how many connections the target accepted.
func (t *rawTarget) conns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conn)
}

// write writes s to c, ignoring errors: the client may be gone.
func write(c net.Conn, s string) { io.WriteString(c, s) }

// allowResponse is a whole HTTP/1.1 allow response with a Content-Length.
const allowResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n" + `{"decision":"allow"}`
