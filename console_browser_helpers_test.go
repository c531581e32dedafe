package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/riskengine/risk/engine"
)

// The console's end-to-end tests drive headless Chromium (Debian's
// chromium package; .ci/run installs it) against the service as main wires
// it. They never skip: without a browser they fail, loudly.
//
// RISK_CONSOLE_SCREENSHOTS=1 writes the screenshots docs/console.md shows
// into docs/console/.

// chromiumPath finds the browser.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Fatal("chromium is not installed: apt-get install -y chromium (.ci/run does this); the console's browser tests do not skip")
	return ""
}

// consoleEnv is the wired service behind a real HTTP server, with keys of
// each role, and one shared headless browser.
type consoleEnv struct {
	t       *testing.T
	app     *app
	url     string
	keys    map[engine.Role]string
	browser context.Context
	dialogs *dialogs
	shots   bool
}

// dialogs records every JavaScript dialog (alert, confirm, prompt) a page
// opened: an XSS payload that runs opens one.
type dialogs struct {
	mu   sync.Mutex
	msgs []string
}

func (d *dialogs) add(m string) {
	d.mu.Lock()
	d.msgs = append(d.msgs, m)
	d.mu.Unlock()
}

func (d *dialogs) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	exe := chromiumPath(t)
	a := wiredApp(t, "--budget", "5s")
	ctx := context.Background()
	env := &consoleEnv{t: t, app: a, keys: map[engine.Role]string{}, dialogs: &dialogs{}, shots: os.Getenv("RISK_CONSOLE_SCREENSHOTS") == "1"}
	for _, role := range []engine.Role{engine.RoleAnalyst, engine.RoleAuditor, engine.RoleAdmin, engine.RoleGateway} {
		_, secret, err := a.keys.Create(ctx, "console-"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		env.keys[role] = secret
	}
	ts := httptest.NewServer(a.server.Handler())
	t.Cleanup(ts.Close)
	env.url = ts.URL

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(bctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			msg = e.Message
		case page.EventJavascriptDialogOpening:
			msg = e.Message
		default:
			return
		}
		env.dialogs.add(msg)
		go func() { _, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{}) }()
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	env.browser = bctx
	return env
}

// run runs browser actions with a deadline, failing the test on error.
func (e *consoleEnv) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.browser, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action that returns a value.
func value[T any](e *consoleEnv, what string, a chromedp.Action[T]) T {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.browser, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor evaluates cond in the page until it is true, through the
// navigations a click starts, and fails the test after 15 s.
func (e *consoleEnv) waitFor(what, cond string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(e.browser, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %s: %q is still false (last error: %v)", what, cond, err)
		}
		ticker := time.NewTimer(50 * time.Millisecond)
		<-ticker.C
	}
}

// text returns the text of the first element matching sel.
func (e *consoleEnv) text(sel string) string {
	e.t.Helper()
	return value(e, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// shot saves a screenshot for docs/console.md when asked to.
func (e *consoleEnv) shot(name string) {
	e.t.Helper()
	if !e.shots {
		return
	}
	buf := value(e, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join("docs", "console", name+".png"), buf, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// signIn signs the browser in with the key of role.
func (e *consoleEnv) signIn(role engine.Role) {
	e.t.Helper()
	e.run("sign in as "+string(role),
		chromedp.Navigate(e.url+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`#api_key`)),
		chromedp.SendKeys(chromedp.CSS(`#api_key`), e.keys[role]),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`#role`)),
	)
	if got := e.text("#role"); got != string(role) {
		e.t.Fatalf("signed in with role %q, want %q", got, role)
	}
}

func (e *consoleEnv) signOut() {
	e.t.Helper()
	e.run("sign out", chromedp.Click(chromedp.CSS(`#sign-out`)), chromedp.WaitVisible(chromedp.CSS(`#api_key`)))
}

// api calls the HTTP API directly with the key of role.
func (e *consoleEnv) api(role engine.Role, method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.keys[role])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// decide screens a payment and returns its decision id.
func (e *consoleEnv) decide(p map[string]any) string {
	e.t.Helper()
	var d struct {
		ID string `json:"decision_id"`
	}
	if code := e.api(engine.RoleGateway, http.MethodPost, "/v1/decisions", p, &d); code != http.StatusOK {
		e.t.Fatalf("decide = %d", code)
	}
	return d.ID
}

func consolePayment(tx string) map[string]any {
	return map[string]any{
		"transaction_id": tx, "amount": 12999, "currency": "USD",
		"account":  map[string]any{"id": "acc_42", "email": "a@example.com", "created_at": "2025-01-02T00:00:00Z", "country": "US"},
		"card":     map[string]any{"fingerprint": "fp_9a", "bin": "411111", "country": "US"},
		"device":   map[string]any{"id": "dev_7", "ip": "203.0.113.7", "ip_country": "FR"},
		"merchant": map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
	}
}
