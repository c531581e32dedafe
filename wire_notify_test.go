package main

import (
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
	code, data, err := srv.call(client, "POST", "/admin/webhooks", fmt.Appendf(nil, `{"url":%q,"events":["decision.denied"]}`, rc.URL))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create webhook = %d %v %s", code, err, data)
	}
	body := fmt.Appendf(nil, `{"transaction_id":"tx_kill_1","amount":1000,"currency":"USD","card":{"fingerprint":"fp_stolen_demo"},"account":{"id":"acc_1"},"merchant":{"id":"m_1"}}`)
	code, data, err = srv.call(client, "POST", "/v1/decisions", body)
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
