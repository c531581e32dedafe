package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebhookDeliveredAfterSIGKILL: a decision acknowledged right before
// the engine is killed with SIGKILL reaches the webhook once a new process
// starts on the same data: its event comes from the durable decision log,
// not from memory.
func TestWebhookDeliveredAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var (
		mu        sync.Mutex
		got       = map[string]int{} // decision id -> deliveries
		delivered = make(chan string, 16)
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
			Data struct {
				DecisionID string `json:"decision_id"`
				ConsoleURL string `json:"console_url"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.Type == "decision.denied" && r.Header.Get("Risk-Signature") != "" {
			mu.Lock()
			got[ev.Data.DecisionID]++
			mu.Unlock()
			select {
			case delivered <- ev.Data.DecisionID:
			default:
			}
		}
	}))
	t.Cleanup(rc.Close)

	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	flags := []string{"--webhook-allow-private", "--public-url", "https://risk.example.com"}
	srv := startServer(t, bin, dir, flags...)
	client := &http.Client{Timeout: 10 * time.Second}
	code, data, err := adminCall(client, srv.url, "POST", "/admin/webhooks", fmt.Appendf(nil, `{"url":%q,"events":["decision.denied"]}`, rc.URL))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create webhook = %d %v %s", code, err, data)
	}
	body := fmt.Appendf(nil, `{"transaction_id":"tx_kill_1","amount":1000,"currency":"USD","card":{"fingerprint":"fp_stolen_demo"},"account":{"id":"acc_1"},"merchant":{"id":"m_1"}}`)
	code, data, err = adminCall(client, srv.url, "POST", "/v1/decisions", body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("decision = %d %v %s", code, err, data)
	}
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL right after the answer
		t.Fatal(err)
	}
	<-srv.done
	var d struct {
		DecisionID string `json:"decision_id"`
		Decision   string `json:"decision"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Decision != "deny" {
		t.Fatalf("answer %s, want a deny", data)
	}
	mu.Lock()
	before := got[d.DecisionID]
	mu.Unlock()
	t.Logf("deliveries before the kill: %d", before)

	startServer(t, bin, dir, flags...)
	timeout := time.After(20 * time.Second)
	for id := ""; id != d.DecisionID; {
		select {
		case id = <-delivered:
		case <-timeout:
			t.Fatalf("decision.denied of %s not delivered within 20 s of the restart", d.DecisionID)
		}
	}
	if !strings.HasPrefix(d.DecisionID, "dec_") {
		t.Errorf("decision id %q", d.DecisionID)
	}
}

// TestCanaryGuardEndToEnd wires the service as serve does (dev mode, no
// keys) and runs a bad canary through it: decisions read from the log by
// the webhook reader reach the guard, which aborts the canary; the
// receiver gets ruleset.published, alert.fired, ruleset.rolled_back and
// alert.resolved, signed. A review rule's item first raises
// decision.review.
func TestCanaryGuardEndToEnd(t *testing.T) {
	app := wiredApp(t, "--dev", "--webhook-allow-private")
	ts := httptest.NewServer(app.server.Handler())
	t.Cleanup(ts.Close)

	events := make(chan string, 64)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &ev) == nil && r.Header.Get("Risk-Signature") != "" {
			events <- ev.Type
		}
	}))
	t.Cleanup(rc.Close)
	call := func(method, path string, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, data, want)
		}
		return data
	}
	call("POST", "/admin/webhooks", fmt.Sprintf(`{"url":%q,"events":["decision.review","ruleset.published","ruleset.rolled_back","alert.fired","alert.resolved"]}`, rc.URL), http.StatusCreated)

	// A review rule: its item is opened by the review queue's reader, and
	// decision.review is put in the outbox in the same transaction.
	call("POST", "/admin/rules", `{"id":"review_big","expression":"amount >= 5000000","action":"review"}`, http.StatusCreated)
	call("POST", "/admin/ruleset/publish", `{}`, http.StatusCreated)
	call("POST", "/v1/decisions", `{"transaction_id":"e2e-review","amount":6000000,"currency":"USD","merchant":{"id":"m_1"}}`, http.StatusOK)
	waitFor := func(typ string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case got := <-events:
				if got == typ {
					return
				}
			case <-timeout:
				t.Fatalf("%s not delivered within 20 s", typ)
			}
		}
	}
	waitFor("decision.review")
	call("POST", "/admin/rules", `{"id":"deny_everyone","expression":"amount > 0","action":"deny"}`, http.StatusCreated)
	call("POST", "/admin/ruleset/publish", `{"canary_percent":50,"guard":{"max_deny_rate_increase":0.05,"min_decisions":30,"window":"30s"}}`, http.StatusCreated)

	aborted := false
	for i := 0; i < 2000 && !aborted; i++ {
		call("POST", "/v1/decisions", fmt.Sprintf(`{"transaction_id":"e2e-%d","amount":1000,"currency":"USD","merchant":{"id":"m_1"}}`, i), http.StatusOK)
		if i%20 == 19 {
			var st struct {
				Active bool `json:"active"`
			}
			_ = json.Unmarshal(call("GET", "/admin/ruleset/canary", "", http.StatusOK), &st)
			aborted = !st.Active
		}
	}
	if !aborted {
		t.Fatal("the canary was not aborted after 2000 decisions")
	}
	want := map[string]bool{"ruleset.published": true, "alert.fired": true, "ruleset.rolled_back": true, "alert.resolved": true}
	timeout := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case typ := <-events:
			delete(want, typ)
		case <-timeout:
			t.Fatalf("events not delivered within 20 s: %v", want)
		}
	}
	var alerts struct {
		Recent []struct {
			Key   string `json:"key"`
			State string `json:"state"`
		} `json:"recent"`
	}
	_ = json.Unmarshal(call("GET", "/admin/alerts", "", http.StatusOK), &alerts)
	if len(alerts.Recent) == 0 || !strings.HasPrefix(alerts.Recent[0].Key, "canary:") || alerts.Recent[0].State != "resolved" {
		t.Errorf("alerts = %+v, want the canary alert resolved", alerts.Recent)
	}
	metrics := string(call("GET", "/metrics", "", http.StatusOK))
	for _, want := range []string{`risk_webhook_deliveries_total{result="ok"} `, `risk_webhook_deliveries_total{result="failed"} 0`, "risk_alerts_firing 0", "risk_webhook_gave_up_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, `risk_webhook_deliveries_total{result="ok"} 0`) {
		t.Error("no delivery counted")
	}
}

// adminCall makes a request to the server at base with the test admin key
// and returns the status and body.
func adminCall(client *http.Client, base, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func TestNotifyFlags(t *testing.T) {
	for _, bad := range []string{"risk.example.com", "ftp://risk.example.com", "https://", "https://x.example/?a=1", "https://x.example/#f"} {
		if _, err := parseConfig([]string{"--public-url", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: err = %v, want refused", bad, err)
		}
	}
	c, err := parseConfig([]string{"--public-url", "https://risk.example.com/base/"}, io.Discard)
	if err != nil || c.Notify.PublicURL != "https://risk.example.com/base/" || c.Notify.AllowPrivate {
		t.Errorf("config = %+v, %v", c.Notify, err)
	}
	t.Setenv("RISK_WEBHOOK_ALLOW_PRIVATE", "true")
	t.Setenv("RISK_PUBLIC_URL", "http://console.internal:8080")
	if c, err := parseConfig(nil, io.Discard); err != nil || !c.Notify.AllowPrivate || c.Notify.PublicURL != "http://console.internal:8080" {
		t.Errorf("from the environment: %+v, %v", c.Notify, err)
	}
	t.Setenv("RISK_WEBHOOK_ALLOW_PRIVATE", "maybe")
	if _, err := parseConfig(nil, io.Discard); err == nil {
		t.Error("RISK_WEBHOOK_ALLOW_PRIVATE=maybe accepted")
	}
}
