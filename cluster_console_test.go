package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/postgres"
)

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleRequest sends a console request with the session cookie (when
// not empty) and returns the status, body and response, not following
// redirects.
func consoleRequest(t *testing.T, method, u, cookie string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "risk_console", Value: cookie})
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String(), resp
}

// checkConsoleAcrossNodes: a browser signed in on node 0 is served by
// node 1, signing out on node 2 ends the session everywhere, and the
// shared store holds no API key.
func checkConsoleAcrossNodes(t *testing.T, env *clusterEnv, nodes []*proc) {
	t.Helper()
	code, _, resp := consoleRequest(t, http.MethodPost, nodes[0].url+"/console/sign-in", "",
		url.Values{"api_key": {testAdminKey}, "next": {"/console/decisions"}})
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == "risk_console" {
			session = c.Value
		}
	}
	if code != http.StatusSeeOther || session == "" {
		t.Fatalf("console sign-in on node 0 = %d, cookie %q", code, session)
	}
	code, page, _ := consoleRequest(t, http.MethodGet, nodes[1].url+"/console/decisions", session, nil)
	m := consoleCSRF.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("node 1 with node 0's console session = %d, want the page", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Options{URL: env.pgURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := 0
	err = db.KV().View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(keyspace.ConsoleSession), kv.ScanOptions{}, func(k, v []byte) error {
			rows++
			if bytes.Contains(v, []byte(testAdminKey)) || bytes.Contains(k, []byte(session)) || bytes.Contains(v, []byte(session)) {
				t.Errorf("stored console session %q holds the API key or the session id", k)
			}
			return nil
		})
	})
	if err != nil || rows != 1 {
		t.Errorf("console sessions in PostgreSQL: %d rows, %v; want 1", rows, err)
	}

	if code, _, _ := consoleRequest(t, http.MethodPost, nodes[2].url+"/console/sign-out", session, url.Values{"csrf": {m[1]}}); code != http.StatusSeeOther {
		t.Fatalf("sign out on node 2 = %d", code)
	}
	for i, nd := range nodes[:2] {
		if code, _, _ := consoleRequest(t, http.MethodGet, nd.url+"/console/decisions", session, nil); code != http.StatusSeeOther {
			t.Errorf("node %d after signing out on node 2 = %d, want 303 to sign-in", i, code)
		}
	}
}
