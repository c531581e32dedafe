package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// job is one request handed from the scheduler to a worker.
type job struct {
	due  time.Time // when it should have been sent; latency starts here
	body *[]byte   // from the body pool; the request body returns it
}

// result is what a worker reports about one request.
type result struct {
	latency time.Duration // from due time to the end of the response body
	status  int           // 0 when no response arrived
	outcome outcome
	failure failure
}

// outcome is the decision found in a 2xx response body.
type outcome uint8

const (
	outcomeNone outcome = iota // not a 2xx response
	outcomeAllow
	outcomeChallenge
	outcomeDeny
	outcomeUnknown // a 2xx response without a recognisable decision
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"", "allow", "challenge", "deny", "unknown"}

// failure classifies a request that got no complete response.
type failure uint8

const (
	failureNone failure = iota
	failureTimeout
	failureCanceled
	failureRefused
	failureReset
	failureEOF
	failureOther
	numFailures
)

var failureNames = [numFailures]string{"", "timeout", "canceled", "connection_refused", "connection_reset", "eof", "other"}

func classify(err error) failure {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return failureTimeout
	case errors.Is(err, context.Canceled):
		return failureCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return failureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return failureReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failureEOF
	}
	return failureOther
}

// client sends decision requests to one URL.
type client struct {
	http    *http.Client
	url     string
	timeout time.Duration
	header  http.Header // shared, read-only
	bodies  *sync.Pool
}

func newClient(c Config, url string, bodies *sync.Pool) *client {
	tr := &http.Transport{
		Proxy: nil, // send to the target only, whatever HTTP_PROXY says
		DialContext: (&net.Dialer{
			Timeout:   c.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        c.Workers,
		MaxIdleConnsPerHost: c.Workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     4 << 10,
		ReadBufferSize:      4 << 10,
	}
	h := http.Header{
		"Content-Type": {"application/json"},
		"User-Agent":   {"risk-loadgen"},
	}
	if c.Key != "" {
		h["Authorization"] = []string{"Bearer " + c.Key}
	}
	return &client{
		http: &http.Client{
			Transport: tr,
			// Never follow a redirect: traffic goes to the target only.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url:     url,
		timeout: c.Timeout,
		header:  h,
		bodies:  bodies,
	}
}

// do sends j and reads the response into buf, which it may overwrite.
func (c *client) do(ctx context.Context, j job, buf []byte) result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := &pooledBody{buf: j.body, pool: c.bodies}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		body.Close()
		return result{failure: failureOther}
	}
	req.ContentLength = int64(len(*j.body))
	req.Header = c.header
	resp, err := c.http.Do(req)
	if err != nil {
		return result{failure: classify(err)}
	}
	n, err := readFull(resp.Body, buf)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		return result{status: resp.StatusCode, failure: classify(err)}
	}
	r := result{latency: time.Since(j.due), status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		r.outcome = parseOutcome(buf[:n])
	}
	return r
}

// readFull reads until buf is full or r is exhausted; io.EOF is no error.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return n, err
}

var decisionKey = []byte(`"decision"`)

// parseOutcome finds the first "decision":"..." member in a JSON body
// without decoding it.
func parseOutcome(b []byte) outcome {
	i := bytes.Index(b, decisionKey)
	if i < 0 {
		return outcomeUnknown
	}
	b = bytes.TrimLeft(b[i+len(decisionKey):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return outcomeUnknown
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	for o := outcomeAllow; o < outcomeUnknown; o++ {
		name := outcomeNames[o]
		if len(b) >= len(name)+2 && b[0] == '"' && string(b[1:1+len(name)]) == name && b[1+len(name)] == '"' {
			return o
		}
	}
	return outcomeUnknown
}

// pooledBody is a request body over a pooled buffer. The transport may close
// a body from another goroutine after Do returns (see http.RoundTripper), so
// the buffer goes back to the pool on the first Close, never earlier, and a
// Read racing that Close sees the body as closed.
type pooledBody struct {
	mu   sync.Mutex
	buf  *[]byte
	off  int
	pool *sync.Pool
}

// Read implements io.Reader.
func (b *pooledBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return 0, errBodyClosed
	}
	if b.off >= len(*b.buf) {
		return 0, io.EOF
	}
	n := copy(p, (*b.buf)[b.off:])
	b.off += n
	return n, nil
}

// Close returns the buffer to the pool; later calls do nothing.
func (b *pooledBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil {
		b.pool.Put(b.buf)
		b.buf = nil
	}
	return nil
}

var errBodyClosed = errors.New("request body closed")
