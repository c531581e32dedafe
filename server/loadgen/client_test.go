package loadgen_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/server/loadgen"
)

// Responses as net/http frames them: with a Content-Length, chunked, and
// bodies longer than the part the client keeps. Few workers, so every
// connection carries many responses and any framing slip would show.
func TestRunReadsResponseBodies(t *testing.T) {
	t.Parallel()
	padding := strings.Repeat(" ", 10<<10)
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		outcome string
	}{
		{"content-length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "22")
			io.WriteString(w, `{"decision":"deny"}   `)
		}, "deny"},
		{"content-length longer than kept", func(w http.ResponseWriter, _ *http.Request) {
			body := `{"decision":"challenge"` + padding + `}`
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		}, "challenge"},
		{"chunked", func(w http.ResponseWriter, _ *http.Request) {
			// A flush before the handler returns makes net/http chunk.
			io.WriteString(w, `{"decision_id":"d1",`)
			w.(http.Flusher).Flush()
			io.WriteString(w, `"decision":"allow"}`)
		}, "allow"},
		{"chunked longer than kept", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"decision":"deny",`)
			w.(http.Flusher).Flush()
			for range 4 {
				io.WriteString(w, `"pad":"`+padding+`",`)
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, `"end":1}`)
		}, "deny"},
		{"decision beyond the kept part", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"pad":"`+padding+`","decision":"allow"}`)
		}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTarget(t, tt.respond)
			_, rep := mustRun(t, srv.URL, "--rate", "100", "--duration", "300ms", "--workers", "2")

			if rep.Sent < 25 || rep.Completed != rep.Sent || rep.Errors != 0 {
				t.Errorf("sent %d completed %d errors %d (%v), want about 30/all/0",
					rep.Sent, rep.Completed, rep.Errors, rep.TransportErrors)
			}
			if got := rep.Outcomes[tt.outcome]; got != rep.Completed {
				t.Errorf("outcomes = %v, want %s=%d", rep.Outcomes, tt.outcome, rep.Completed)
			}
			if got := int64(len(srv.received())); got != rep.Sent {
				t.Errorf("server saw %d requests, report says %d sent", got, rep.Sent)
			}
		})
	}
}

// A light load goes through few connections, however many workers there
// are: connections are kept and reused, so the server sees about as many as
// were ever busy at once, not one per request. The bound is relative to the
// peak the server measured, so a stalled machine (which makes requests
// overlap) cannot fail it, while a client that dials per request does.
func TestRunReusesConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns, active, peak := 0, 0, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(allow))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns++
			active++
			peak = max(peak, active)
		case http.StateClosed, http.StateHijacked:
			active--
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, rep := mustRun(t, srv.URL, "--rate", "200", "--duration", "500ms", "--workers", "512")

	if rep.Completed != rep.Sent || rep.Errors != 0 {
		t.Errorf("completed %d errors %d, want %d/0", rep.Completed, rep.Errors, rep.Sent)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns < 1 || conns > 2*peak+2 || int64(conns) >= rep.Sent {
		t.Errorf("%d connections for %d requests (at most %d open at once), want them reused", conns, rep.Sent, peak)
	}
}

// A server that closes the connection after some responses: the client
// reconnects and the next requests succeed.
func TestRunReconnectsAfterConnectionClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rate    string // requests/s, for 1s
		respond func(c net.Conn, n int) bool
	}{
		{"Connection: close", "50", func(c net.Conn, n int) bool {
			if n%3 != 2 {
				write(c, allowResponse)
				return true
			}
			write(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 20\r\n\r\n"+`{"decision":"allow"}`)
			return false
		}},
		{"HTTP/1.0", "50", func(c net.Conn, _ int) bool {
			write(c, "HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\n"+`{"decision":"allow"}`)
			return false
		}},
		{"body to the end of the connection", "50", func(c net.Conn, _ int) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"+`{"decision":"allow"}`)
			return false
		}},
		{"idle timeout", "5", func(c net.Conn, _ int) bool {
			// Closed 20ms after the response, without a word; the next
			// request comes 200ms later and must not be the one to find
			// out.
			write(c, allowResponse)
			time.AfterFunc(20*time.Millisecond, func() { c.Close() })
			return true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawTarget(t, tt.respond)
			_, rep := mustRun(t, srv.URL, "--rate", tt.rate, "--duration", "1s")

			want, _ := strconv.ParseInt(tt.rate, 10, 64)
			if rep.Sent != want || rep.Completed != want || rep.Errors != 0 || rep.Outcomes["allow"] != want {
				t.Errorf("sent %d completed %d errors %d (%v) outcomes %v, want %d allowed",
					rep.Sent, rep.Completed, rep.Errors, rep.TransportErrors, rep.Outcomes, want)
			}
			if n := srv.conns(); n < 2 {
				t.Errorf("%d connections, want a reconnect", n)
			}
		})
	}
}

// A server that reads requests and never answers: each request times out
// and the run still ends.
func TestRunTimesOutOnHangingServer(t *testing.T) {
	t.Parallel()
	srv := newRawTarget(t, func(net.Conn, int) bool { return true })
	began := time.Now()
	_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "300ms", "--timeout", "100ms")

	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("run took %v, want about 400ms", took)
	}
	if rep.Sent < 10 || rep.Timeouts != rep.Sent || rep.TransportErrors["timeout"] != rep.Sent {
		t.Errorf("sent %d timeouts %d transport errors %v, want every request timed out",
			rep.Sent, rep.Timeouts, rep.TransportErrors)
	}
	if rep.Completed != 0 || rep.Errors != rep.Sent {
		t.Errorf("completed %d errors %d, want 0/%d", rep.Completed, rep.Errors, rep.Sent)
	}
	if got := int64(len(srv.received())); got != rep.Sent {
		t.Errorf("server read %d requests, report says %d sent", got, rep.Sent)
	}
}

// Cancelling the run stops requests in flight at once, not at their
// timeout.
func TestRunStopsWhenCancelledWhileServerHangs(t *testing.T) {
	t.Parallel()
	srv := newRawTarget(t, func(net.Conn, int) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	began := time.Now()
	_, rep, err := runLoad(t, ctx, srv.URL, "--rate", "20", "--duration", "1m", "--timeout", "10s")

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Run took %v after cancel at 300ms", took)
	}
	if rep.Sent == 0 || rep.TransportErrors["canceled"] != rep.Sent || rep.Timeouts != 0 {
		t.Errorf("sent %d, transport errors %v: want every request canceled", rep.Sent, rep.TransportErrors)
	}
}

// A server that drops the connection part way through a response: the
// request fails as eof (or reset) rather than hanging or counting as done.
func TestRunCountsCutResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  string // written before the close
		reset   bool   // close with RST instead of FIN
		failure string
	}{
		{"before the response", "", false, "eof"},
		{"in the status line", "HTTP/1.1 2", false, "eof"},
		{"in the headers", "HTTP/1.1 200 OK\r\nContent-Len", false, "eof"},
		{"in a content-length body", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"decision\"", false, "eof"},
		{"in a chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"decision\"", false, "eof"},
		{"before the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", false, "eof"},
		{"reset", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", true, "connection_reset"},
		{"garbage", "SSH-2.0-OpenSSH_9.6\r\n", false, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawTarget(t, func(c net.Conn, _ int) bool {
				write(c, tt.answer)
				if tt.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				return false
			})
			began := time.Now()
			_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "200ms", "--timeout", "5s")

			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("run took %v, want about 200ms", took)
			}
			if rep.Sent < 5 || rep.TransportErrors[tt.failure] != rep.Sent || rep.Errors != rep.Sent || rep.Completed != 0 {
				t.Errorf("sent %d completed %d errors %d transport errors %v, want every request %s",
					rep.Sent, rep.Completed, rep.Errors, rep.TransportErrors, tt.failure)
			}
		})
	}
}

// Non-2xx answers complete, count by status and as errors, and have no
// outcome.
func TestRunCountsStatus(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	codes := []int{200, 429, 503, 500, 401}
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		code := codes[(n.Add(1)-1)%int64(len(codes))]
		if code == 200 {
			allow(w, r)
			return
		}
		body := `{"decision":"deny","error":"` + http.StatusText(code) + `"}`
		if code == 500 {
			w.WriteHeader(code)
			w.(http.Flusher).Flush() // headers out without a length: chunked
			io.WriteString(w, body)
			return
		}
		http.Error(w, body, code)
	})
	_, rep := mustRun(t, srv.URL, "--rate", "100", "--duration", "500ms")

	if rep.Sent != 50 || rep.Completed != 50 {
		t.Fatalf("sent %d completed %d (%v), want 50/50", rep.Sent, rep.Completed, rep.TransportErrors)
	}
	want := map[string]int64{}
	for _, c := range codes {
		want[strconv.Itoa(c)] = 10
	}
	if fmt.Sprint(rep.Status) != fmt.Sprint(want) {
		t.Errorf("status = %v, want %v", rep.Status, want)
	}
	if rep.Errors != 40 || fmt.Sprint(rep.Outcomes) != "map[allow:10]" {
		t.Errorf("errors %d outcomes %v, want 40 and allow=10 only", rep.Errors, rep.Outcomes)
	}
}

// The request on the wire: exactly these headers, to the target's host and
// path and nowhere else, whatever the proxy environment says.
func TestRunSendsOnlyToTargetAddress(t *testing.T) {
	var proxied atomic.Int64
	proxy := newTarget(t, func(w http.ResponseWriter, r *http.Request) { proxied.Add(1); allow(w, r) })
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv(loadgen.KeyEnv, "")
	srv := newRawTarget(t, func(c net.Conn, _ int) bool { write(c, allowResponse); return true })
	_, rep := mustRun(t, srv.URL+"/base/", "--rate", "50", "--duration", "200ms", "--key", "k1")

	if n := proxied.Load(); n != 0 {
		t.Errorf("proxy got %d requests, want 0", n)
	}
	reqs := srv.received()
	if rep.Completed != rep.Sent || int64(len(reqs)) != rep.Sent || rep.Sent == 0 {
		t.Fatalf("completed %d, sent %d, target saw %d", rep.Completed, rep.Sent, len(reqs))
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, r := range reqs {
		want := "POST /base/v1/decisions HTTP/1.1\r\n" +
			"Host: " + host + "\r\n" +
			"Content-Type: application/json\r\n" +
			"User-Agent: risk-loadgen\r\n" +
			"Authorization: Bearer k1\r\n" +
			"Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n"
		if r.head != want {
			t.Fatalf("request head:\n%q\nwant\n%q", r.head, want)
		}
		decode(t, r.body)
	}
}
