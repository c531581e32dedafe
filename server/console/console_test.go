package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/server/console"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keys is a fake Authenticator: token -> principal.
type keys map[string]engine.Principal

func (k keys) Authenticate(_ context.Context, token string) (engine.Principal, error) {
	if p, ok := k[token]; ok {
		return p, nil
	}
	return engine.Principal{}, fmt.Errorf("key: %w", engine.ErrNotFound)
}

const (
	analystKey = "rk_analyst_0123456789abcdef0123456789"
	gatewayKey = "rk_gateway_0123456789abcdef0123456789"
)

// fakeAPI stands in for the engine's HTTP API: it records the bearer key of
// each call and answers the few routes these tests use.
type fakeAPI struct {
	mu      sync.Mutex
	bearers []string
	revoked bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.bearers = append(f.bearers, r.Header.Get("Authorization"))
	revoked := f.revoked
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if revoked {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"unauthorized","message":"unknown or revoked API key"}`)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/decisions":
		_, _ = io.WriteString(w, `{"decisions":[{"decision_id":"dec_1","transaction_id":"tx_<b>1</b>","decision":"allow","score":0,"ruleset_version":1,"evaluated_at":"2026-01-02T03:04:05Z"}]}`)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/feedback"):
		_, _ = io.WriteString(w, `{"added":true}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":"not_found","message":"not found"}`)
	}
}

type env struct {
	t     *testing.T
	clock *clock
	api   *fakeAPI
	srv   *httptest.Server
	c     *http.Client
}

// newEnv starts a console on a fake API; opts may change its Config (a
// session store, say).
func newEnv(t *testing.T, opts ...func(*console.Config, *clock)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, api: &fakeAPI{}}
	cfg := console.Config{
		API:  e.api,
		Auth: keys{analystKey: {KeyID: "k1", Name: "alice", Role: engine.RoleAnalyst}, gatewayKey: {KeyID: "k2", Name: "gw", Role: engine.RoleGateway}},
		Now:  e.clock.Now, IdleTimeout: 30 * time.Minute, MaxAge: 2 * time.Hour,
	}
	for _, o := range opts {
		o(&cfg, e.clock)
	}
	con, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ec := echo.New()
	con.Register(ec.Group(""))
	e.srv = httptest.NewServer(ec)
	t.Cleanup(e.srv.Close)
	jar, _ := cookiejar.New(nil)
	e.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) signIn(key string) *http.Response {
	e.t.Helper()
	resp, body := e.do(http.MethodPost, "/console/sign-in", url.Values{"api_key": {key}, "next": {"/console/decisions"}}, nil)
	if key != "" && strings.Contains(body, key) {
		e.t.Errorf("the sign-in answer contains the key")
	}
	return resp
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a page.
func (e *env) csrf() string {
	e.t.Helper()
	_, body := e.do(http.MethodGet, "/console/decisions", nil, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

func TestSignIn(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want int
	}{
		{"empty", "", http.StatusUnauthorized},
		{"unknown key", "rk_nope_0123456789abcdef0123456789", http.StatusUnauthorized},
		{"gateway key", gatewayKey, http.StatusForbidden},
		{"analyst key", analystKey, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.signIn(tt.key)
			if resp.StatusCode != tt.want {
				t.Fatalf("sign-in = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusSeeOther {
				if len(resp.Cookies()) != 0 {
					t.Errorf("a refused sign-in set cookies: %v", resp.Cookies())
				}
				return
			}
			if loc := resp.Header.Get("Location"); loc != "/console/decisions" {
				t.Errorf("redirect to %q", loc)
			}
			ck := resp.Cookies()[0]
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || ck.Secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not Secure over plain HTTP", ck)
			}
			if strings.Contains(ck.Value, analystKey) {
				t.Error("the cookie holds the key")
			}
			_, body := e.do(http.MethodGet, "/console/decisions", nil, nil)
			if !strings.Contains(body, "tx_&lt;b&gt;1&lt;/b&gt;") {
				t.Errorf("the page does not show the escaped transaction id:\n%s", body)
			}
			e.api.mu.Lock()
			defer e.api.mu.Unlock()
			if got := e.api.bearers[len(e.api.bearers)-1]; got != "Bearer "+analystKey {
				t.Errorf("the API was called with %q, want the session's key", got)
			}
		})
	}
}

func TestSignInRefusesOtherSitesAndForeignRedirects(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.do(http.MethodPost, "/console/sign-in", url.Values{"api_key": {analystKey}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-in = %d, want 403", resp.StatusCode)
	}
	resp, _ = e.do(http.MethodPost, "/console/sign-in", url.Values{"api_key": {analystKey}}, http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in from another origin = %d, want 403", resp.StatusCode)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/console/\\evil", "/admin/keys"} {
		resp, _ := e.do(http.MethodPost, "/console/sign-in", url.Values{"api_key": {analystKey}, "next": {next}}, nil)
		if loc := resp.Header.Get("Location"); loc != "/console/" {
			t.Errorf("next %q redirects to %q, want /console/", next, loc)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testSessionExpiry(t, nil) })
	t.Run("store", func(t *testing.T) { testSessionExpiry(t, withStore(newMapStore())) })
}

func testSessionExpiry(t *testing.T, opt func(*console.Config, *clock)) {
	newEnv := func(t *testing.T) *env {
		if opt == nil {
			return newEnv(t)
		}
		return newEnv(t, opt)
	}
	t.Run("idle", func(t *testing.T) {
		e := newEnv(t)
		e.signIn(analystKey)
		e.clock.Advance(29 * time.Minute)
		if resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("after 29 idle minutes = %d, want 200", resp.StatusCode)
		}
		e.clock.Advance(30 * time.Minute)
		resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/sign-in") {
			t.Errorf("after 30 idle minutes = %d to %q, want 303 to sign-in", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("absolute", func(t *testing.T) {
		e := newEnv(t)
		e.signIn(analystKey)
		for i := 0; i < 5; i++ { // used every 20 minutes: 1 h 40 min
			e.clock.Advance(20 * time.Minute)
			if resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("in use after %d min = %d", (i+1)*20, resp.StatusCode)
			}
		}
		e.clock.Advance(20 * time.Minute) // 2 h after sign-in
		if resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("2 h after sign-in = %d, want 303 (absolute expiry)", resp.StatusCode)
		}
	})
	t.Run("revoked key", func(t *testing.T) {
		e := newEnv(t)
		e.signIn(analystKey)
		e.api.mu.Lock()
		e.api.revoked = true
		e.api.mu.Unlock()
		if resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("with a revoked key = %d, want 401", resp.StatusCode)
		}
		e.api.mu.Lock()
		e.api.revoked = false
		e.api.mu.Unlock()
		if resp, _ := e.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after the API refused the key the session goes on: %d, want 303 to sign-in", resp.StatusCode)
		}
	})
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	e.signIn(analystKey)
	token := e.csrf()
	form := func(tok string) url.Values { return url.Values{"label": {"fraud"}, "csrf": {tok}} }
	tests := []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"no token", form(""), nil, http.StatusForbidden},
		{"wrong token", form("x" + token), nil, http.StatusForbidden},
		{"other origin", form(token), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"cross-site fetch", form(token), http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"header token", url.Values{"label": {"fraud"}}, http.Header{"X-Csrf-Token": {token}}, http.StatusSeeOther},
		{"form token", form(token), nil, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := e.do(http.MethodPost, "/console/decisions/dec_1/feedback", tt.form, tt.header)
			if resp.StatusCode != tt.want {
				t.Errorf("= %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// An oversized form is refused before it reaches the API.
	big := form(token)
	big.Set("note", strings.Repeat("x", 300<<10))
	if resp, _ := e.do(http.MethodPost, "/console/decisions/dec_1/feedback", big, nil); resp.StatusCode < 400 {
		t.Errorf("a 300 KiB form = %d, want it refused", resp.StatusCode)
	}
	// Sign out ends the session.
	resp, _ := e.do(http.MethodPost, "/console/sign-out", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out = %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodPost, "/console/decisions/dec_1/feedback", form(token), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a change after sign-out = %d, want 401", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.do(http.MethodGet, "/console/sign-in", nil, nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP = %q", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if resp, _ := e.do(http.MethodGet, "/console/static/htmx.min.js", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("htmx = %d", resp.StatusCode)
	}
}

func TestSignInThrottled(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		if resp := e.signIn("rk_guess_0123456789abcdef0123456789"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d, want 401", i+1, resp.StatusCode)
		}
	}
	if resp := e.signIn(analystKey); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 10 failures even a good key = %d, want 429", resp.StatusCode)
	}
	e.clock.Advance(10 * time.Minute)
	if resp := e.signIn(analystKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after the window = %d, want 303", resp.StatusCode)
	}
}
