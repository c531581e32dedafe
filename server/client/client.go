// Package client is a Go client of the risk engine's HTTP API
// (docs/openapi.yaml, docs/integration.md): screening payments, explaining
// and searching decisions, feedback, and the admin calls analysts script
// (rules, publish, rollback, lists, backtests, backup).
//
// Every call has a deadline (Config.Timeout, or the context's if earlier).
// Calls that are safe to repeat — Decide (the engine answers a repeated
// transaction id with the stored decision), feedback, reads, PUT and
// DELETE — are retried on timeouts, connection errors, 429 and 5xx, with
// exponential backoff and full jitter, honouring Retry-After, within the
// deadline. When Decide gets no answer in time, Config.Fallback decides
// (fail open or closed per merchant). API errors are *Error values
// carrying the API's code and field.
//
// This package imports only the standard library, so a gateway can vendor
// it alone.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config.
const (
	// DefaultDecideTimeout bounds a Decide call, retries included: a
	// pre-authorization check must not hold the payment long.
	DefaultDecideTimeout = 800 * time.Millisecond
	// DefaultTimeout bounds every other call, retries included.
	DefaultTimeout = 30 * time.Second
	// DefaultRetries is how many times a failed attempt is repeated.
	DefaultRetries = 2
	// DefaultBackoff is the first backoff; it doubles per retry, with
	// full jitter, up to MaxBackoff.
	DefaultBackoff = 25 * time.Millisecond
	// MaxBackoff caps one wait between attempts.
	MaxBackoff = 2 * time.Second
)

// Config configures a Client. BaseURL and Key are required (Key may be
// empty against an engine in --dev mode).
type Config struct {
	// BaseURL is the engine's address, such as https://risk.internal:8080.
	BaseURL string
	// Key is the API key, sent as Authorization: Bearer <key>.
	Key string
	// HTTP sends the requests; nil means a client with sensible pooling
	// and no overall timeout (each call has its deadline).
	HTTP *http.Client
	// DecideTimeout bounds a Decide call with its retries; zero means
	// DefaultDecideTimeout.
	DecideTimeout time.Duration
	// Timeout bounds every other call with its retries (not Backup, which
	// streams for as long as ctx allows); zero means DefaultTimeout.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt, so a hung attempt leaves time to
	// retry; zero means a third of the call's deadline.
	AttemptTimeout time.Duration
	// Retries is how many times an attempt is repeated; zero means
	// DefaultRetries, negative means none.
	Retries int
	// Backoff is the first wait between attempts; zero means
	// DefaultBackoff.
	Backoff time.Duration
	// Fallback, when set, answers Decide when the engine gave no answer
	// within the deadline (timeouts, connection errors, 429 and 5xx after
	// the retries); its decision is returned with Fallback true. A 4xx
	// answer (a bad request, a conflict) never falls back. See
	// FailOpenClosed.
	Fallback FallbackFunc
	// UserAgent is sent with every request; empty means "risk-go-client".
	UserAgent string
}

// FallbackFunc decides a payment the engine did not answer in time; err
// is why. It must not block.
type FallbackFunc func(ctx context.Context, p Payment, err error) (Decision, error)

// FailOpenClosed returns a FallbackFunc that answers byMerchant[merchant id]
// when the payment's merchant is listed, else def: Allow fails open,
// Deny fails closed, Challenge steps up.
func FailOpenClosed(def Outcome, byMerchant map[string]Outcome) FallbackFunc {
	return func(_ context.Context, p Payment, err error) (Decision, error) {
		o := def
		if p.Merchant != nil {
			if m, ok := byMerchant[p.Merchant.ID]; ok {
				o = m
			}
		}
		return Decision{
			TransactionID: p.TransactionID, Outcome: o, Degraded: true,
			DegradedCause: "client fallback: " + err.Error(),
			Reasons:       []Reason{}, EvaluatedAt: time.Now().UTC(),
		}, nil
	}
}

// Client calls one engine. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

// New returns a Client for cfg. It does no I/O.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if cfg.DecideTimeout <= 0 {
		cfg.DecideTimeout = DefaultDecideTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "risk-go-client"
	}
	return &Client{cfg: cfg, base: u}, nil
}

// Error is an error answer of the API. Branch on Code (and Status), never
// on Message.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the API's stable machine code, such as "unknown_field",
	// "conflict" or "rate_limited".
	Code string `json:"code"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
	// Field is the request field at fault, when one is.
	Field string `json:"field,omitempty"`
	// RequestID names the request in the engine's logs.
	RequestID string `json:"request_id,omitempty"`
	// Errors holds every compile error of a 422, as JSON.
	Errors json.RawMessage `json:"errors,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("risk: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// ErrTimeout is wrapped by the error of a call that got no answer within
// its deadline.
var ErrTimeout = errors.New("no answer within the deadline")

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// retryable reports whether an attempt that ended with err (and status,
// when there was an answer) may be repeated.
func retryable(status int, err error) bool {
	if status == http.StatusTooManyRequests || status >= 500 {
		return true
	}
	if status != 0 {
		return false
	}
	return err != nil // timeouts, refused or reset connections
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         any // marshalled to JSON; []byte is sent as is
	contentType  string
	retry        bool          // safe to repeat
	timeout      time.Duration // the call's deadline
}

// do runs r with retries and decodes a 2xx JSON answer into out (when not
// nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			return fmt.Errorf("client: encode %s %s: %w", r.method, r.path, err)
		}
		r.contentType = "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	attempts := 1
	if r.retry {
		attempts += c.cfg.Retries
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		status, wait, err := c.attempt(ctx, r, body, out)
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		if i == attempts-1 || !retryable(status, err) {
			return err
		}
		backoff := c.backoff(i)
		if wait > backoff {
			backoff = wait
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= backoff {
			break // no time left for another attempt
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if ctx.Err() != nil || isTimeout(lastErr) {
		return fmt.Errorf("risk: %s %s: %w: %w", r.method, r.path, ErrTimeout, lastErr)
	}
	return lastErr
}

// backoff is the wait before retry i+1: full jitter over an exponential
// cap.
func (c *Client) backoff(i int) time.Duration {
	ceil := c.cfg.Backoff << i
	if ceil > MaxBackoff || ceil <= 0 {
		ceil = MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(ceil)) + 1)
}

// attempt sends r once. It returns the status (0 without an answer), the
// Retry-After wait, and the error.
func (c *Client) attempt(ctx context.Context, r request, body []byte, out any) (int, time.Duration, error) {
	actx := ctx
	if at := c.attemptTimeout(r.timeout); at > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, at)
		defer cancel()
	}
	req, err := c.newRequest(actx, r, body)
	if err != nil {
		return 0, 0, err
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("risk: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, retryAfter(resp.Header), decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, 0, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("risk: %s %s: decode the answer: %w", r.method, r.path, err)
	}
	return resp.StatusCode, 0, nil
}

func (c *Client) attemptTimeout(call time.Duration) time.Duration {
	if c.cfg.AttemptTimeout > 0 {
		return c.cfg.AttemptTimeout
	}
	if c.cfg.Retries == 0 {
		return 0
	}
	return call / 3
}

func (c *Client) newRequest(ctx context.Context, r request, body []byte) (*http.Request, error) {
	u := *c.base
	u.Path += r.path
	u.RawPath = ""
	if strings.Contains(r.path, "%") {
		u.RawPath = c.base.EscapedPath() + r.path
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return nil, fmt.Errorf("client: path %q: %w", r.path, err)
		}
		u.Path = p
	}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	return req, nil
}

// decodeError reads an error answer into an *Error.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(data, e) != nil || e.Code == "" {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// retryAfter is the Retry-After header in seconds, or zero.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// noAnswer reports whether err means the engine gave no usable answer:
// the case for a fallback.
func noAnswer(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return err != nil
}

// pathEscape escapes one path segment, '/' included.
func pathEscape(s string) string { return url.PathEscape(s) }
