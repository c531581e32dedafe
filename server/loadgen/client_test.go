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

			// How many of the 30 find a free worker depends on the
			// machine; any 3 put two responses on one connection.
			if rep.Sent+rep.Unsent != 30 || rep.Sent < 3 || rep.Completed != rep.Sent || rep.Errors != 0 {
				t.Errorf("sent %d unsent %d completed %d errors %d (%v), want 30 due, at least 3 sent, all completed",
					rep.Sent, rep.Unsent, rep.Completed, rep.Errors, rep.TransportErrors)
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
// are. A client that dialled a connection per request, or spread the load
// over its 512 workers, would open one a request (40). One that reuses them
// opens a connection only when every open one is busy: at 20/s a request
// has 50 ms before the next is due and a loopback answer takes well under
// 1 ms, so few are needed; but a loaded machine that stalls the process
// makes the late requests overlap, and each overlapping one takes a
// connection of its own (a run once took 6 for 20). So the bound is
// relative: on average each connection carries at least two requests,
// which a stall breaks only if it makes half of the run's requests, a
// second's worth, overlap. TestDispatcherPrefersLatestIdle pins the
// choice of worker exactly. Not parallel: how many requests overlap
// depends on how fast they are answered.
func TestRunReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(allow))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, rep := mustRun(t, srv.URL, "--rate", "20", "--duration", "2s", "--workers", "512")

	if rep.Sent != 40 || rep.Completed != rep.Sent || rep.Errors != 0 {
		t.Errorf("sent %d completed %d errors %d, want 40/40/0", rep.Sent, rep.Completed, rep.Errors)
	}
	if n := conns.Load(); n < 1 || n > rep.Sent/2 {
		t.Errorf("%d connections for %d requests at 20/s, want 1..%d (two requests a connection)", n, rep.Sent, rep.Sent/2)
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

// A server that closes an idle connection without a word: the client
// notices before reusing it. Not parallel, since it depends on the close
// (20ms after each response) landing before the next request (500ms
// later) is sent; only a stall of over 400ms could reorder them.
func TestRunReconnectsAfterIdleTimeout(t *testing.T) {
	srv := newRawTarget(t, func(c net.Conn, _ int) bool {
		write(c, allowResponse)
		time.AfterFunc(20*time.Millisecond, func() { c.Close() })
		return true
	})
	_, rep := mustRun(t, srv.URL, "--rate", "2", "--duration", "1500ms")

	if rep.Sent != 3 || rep.Completed != 3 || rep.Errors != 0 || rep.Outcomes["allow"] != 3 {
		t.Errorf("sent %d completed %d errors %d (%v) outcomes %v, want 3 allowed",
			rep.Sent, rep.Completed, rep.Errors, rep.TransportErrors, rep.Outcomes)
	}
	if n := srv.conns(); n != 3 {
		t.Errorf("%d connections, want one per request (3)", n)
	}
}

// A server that reads requests and never answers: each request times out
// and the run still ends. Not parallel: it asserts how long the run took.
func TestRunTimesOutOnHangingServer(t *testing.T) {
	srv := newRawTarget(t, func(net.Conn, int) bool { return true })
	began := time.Now()
	_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "300ms", "--timeout", "100ms")

	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("run took %v, want about 400ms", took)
	}
	if rep.Sent != 15 || rep.Timeouts != rep.Sent || rep.TransportErrors["timeout"] != rep.Sent {
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
// timeout. The cancel comes when the server has read the 5th request, so
// the count does not depend on timers; the test asserts how long the run
// took after it, so it is not parallel.
func TestRunStopsWhenCancelledWhileServerHangs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled atomic.Int64 // UnixNano of the cancel
	srv := newRawTarget(t, func(_ net.Conn, n int) bool {
		if n == 4 {
			cancelled.Store(time.Now().UnixNano())
			cancel()
		}
		return true
	})
	_, rep, err := runLoad(t, ctx, srv.URL, "--rate", "20", "--duration", "1m", "--timeout", "1m")

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	if took := time.Since(time.Unix(0, cancelled.Load())); took > 5*time.Second {
		t.Errorf("Run returned %v after the cancel, want at once (the timeout is 1m)", took)
	}
	if rep.Sent < 5 || rep.TransportErrors["canceled"] != rep.Sent || rep.Timeouts != 0 {
		t.Errorf("sent %d, transport errors %v: want at least 5, every one canceled", rep.Sent, rep.TransportErrors)
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
			// A client that waited for more bytes would time out after
			// 8s and count the request as a timeout, not as tt.failure;
			// no duration is asserted, the test being parallel.
			_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "200ms", "--timeout", "8s")

			if rep.Sent != 10 || rep.TransportErrors[tt.failure] != rep.Sent || rep.Errors != rep.Sent || rep.Completed != 0 {
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
