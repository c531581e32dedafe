package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkClientRequest sends decision requests one after another through
// one client connection to an in-process raw TCP server that answers each
// with a fixed small JSON decision. ns/op is a loopback round trip; allocs/op
// should be 0. cpu-ns/op is the process CPU time per request, client and
// server together, which compares better than the wall clock on a shared
// machine.
func BenchmarkClientRequest(b *testing.B) {
	addr := serveDecisions(b)
	c := DefaultConfig()
	c.Target = "http://" + addr
	c.Key = "bench-key"
	target, err := url.Parse(c.Target + "/v1/decisions")
	if err != nil {
		b.Fatal(err)
	}
	bodies := &sync.Pool{New: func() any { buf := make([]byte, 0, 1024); return &buf }}
	w := newClient(c, target, bodies).newConn()
	defer w.close()
	body := newTraffic(c, "bench").next(time.Now(), nil)
	ctx := context.Background()
	send := func() result {
		p := bodies.Get().(*[]byte)
		*p = append((*p)[:0], body...)
		return w.do(ctx, job{due: time.Now(), body: p})
	}
	if r := send(); r.failure != failureNone { // connects
		b.Fatalf("first request: %s", failureNames[r.failure])
	}

	b.ReportAllocs()
	cpu := cpuTime(b)
	var r result
	for b.Loop() {
		r = send()
		if r.failure != failureNone {
			b.Fatalf("request failed: %s", failureNames[r.failure])
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
	if r.status != 200 || r.outcome != outcomeAllow || r.latency <= 0 {
		b.Errorf("last result %+v, want a 200 allow with a latency", r)
	}
}

// BenchmarkNetHTTPRequest is BenchmarkClientRequest through net/http
// instead: one keep-alive connection of an http.Client to the same server,
// the same body and headers, the body read into a reused buffer and its
// outcome parsed the same way. The difference of the two cpu-ns/op is the
// CPU the package's own client saves per request (docs/libraries.md).
func BenchmarkNetHTTPRequest(b *testing.B) {
	addr := serveDecisions(b)
	c := DefaultConfig()
	c.Target = "http://" + addr
	body := newTraffic(c, "bench").next(time.Now(), nil)
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: c.Timeout}
	url := c.Target + "/v1/decisions"
	buf := bytes.NewBuffer(make([]byte, 0, readBuf))
	send := func() (int, outcome, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "risk-loadgen")
		req.Header.Set("Authorization", "Bearer bench-key")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, parseOutcome(buf.Bytes()), err
	}
	if _, _, err := send(); err != nil { // connects
		b.Fatalf("first request: %v", err)
	}

	b.ReportAllocs()
	cpu := cpuTime(b)
	var (
		status int
		out    outcome
		err    error
	)
	for b.Loop() {
		if status, out, err = send(); err != nil {
			b.Fatalf("request failed: %v", err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
	if status != 200 || out != outcomeAllow {
		b.Errorf("last result %d %v, want a 200 allow", status, out)
	}
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveDecisions starts a keep-alive HTTP/1.1 server on a raw listener
// that answers every request, without allocating, with the same small
// allow decision. It returns the server's address.
func serveDecisions(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	const body = `{"decision_id":"d_1","decision":"allow","score":3,"reasons":[]}`
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n, err := readRequestHead(br)
					if err == nil {
						_, err = br.Discard(n)
					}
					if err == nil {
						_, err = c.Write(answer)
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	return ln.Addr().String()
}

// readRequestHead reads a request line and headers and returns the
// Content-Length.
func readRequestHead(br *bufio.Reader) (int, error) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return n, nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, d := range v {
				if d < '0' || d > '9' {
					return 0, errors.New("bad Content-Length")
				}
				n = n*10 + int(d-'0')
			}
		}
	}
}
