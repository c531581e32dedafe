package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/riskengine/risk/server"
)

// TestRequestLimits: every bound on a decision request is a 400 naming the
// field, and nothing is stored.
func TestRequestLimits(t *testing.T) {
	e := newEdge(t, edgeOptions{})
	manyAttrs := map[string]any{}
	for i := range 65 {
		manyAttrs[fmt.Sprintf("a%d", i)] = i
	}
	long := strings.Repeat("x", 257)
	tests := []struct {
		name      string
		body      any
		wantCode  string
		wantField string
	}{
		{"body over 64 KiB", set(payment("t_big"), "attributes.blob", strings.Repeat("x", 70<<10)), "body_too_large", ""},
		{"deeply nested attribute", strings.Replace(toJSON(payment("t_deep")), `"web"`, strings.Repeat("[", 5000)+strings.Repeat("]", 5000), 1), "invalid_type", "attributes.channel"},
		{"object attribute", set(payment("t_obj"), "attributes.channel", map[string]any{"a": 1}), "invalid_type", "attributes.channel"},
		{"65 attributes", set(payment("t_attrs"), "attributes", manyAttrs), "too_many", "attributes"},
		{"long attribute name", set(payment("t_key"), "attributes."+strings.Repeat("k", 65), 1), "invalid_key", "attributes." + strings.Repeat("k", 65)},
		{"long attribute value", set(payment("t_val"), "attributes.channel", long), "too_long", "attributes.channel"},
		{"long transaction id", payment(strings.Repeat("t", 129)), "too_long", "transaction_id"},
		{"unknown top-level field", set(payment("t_unk"), "card_number", "x"), "unknown_field", "card_number"},
		{"unknown nested field", set(payment("t_unk2"), "card.number", "x"), "unknown_field", "card.number"},
		{"amount as a string", set(payment("t_str"), "amount", "12999"), "invalid_type", "amount"},
		{"fractional amount", set(payment("t_frac"), "amount", 12.5), "invalid_amount", "amount"},
		{"two JSON values", toJSON(payment("t_two")) + "{}", "invalid_json", ""},
		{"not an object", `[1,2]`, "invalid_json", ""},
	}
	for _, f := range []string{"account.id", "account.email", "account.country", "card.fingerprint", "card.bin", "card.country",
		"device.id", "device.ip", "device.ip_country", "merchant.id", "merchant.mcc", "merchant.country"} {
		tests = append(tests, struct {
			name      string
			body      any
			wantCode  string
			wantField string
		}{"long " + f, set(payment("t_long_"+f), f, long), "too_long", f})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, data := e.send("", "POST", "/v1/decisions", tt.body)
			body := decodeJSON[apiError](t, data)
			if code != http.StatusBadRequest || body.Code != tt.wantCode || body.Field != tt.wantField {
				t.Errorf("got %d %s, want 400 %s on %q", code, data, tt.wantCode, tt.wantField)
			}
		})
	}
	if seq := e.store.Stats().LastSeq; seq != 0 {
		t.Errorf("%d decisions were stored", seq)
	}
}

// TestHeaderLimit: headers beyond DefaultMaxHeaderBytes are refused by the
// real http.Server before any handler runs.
func TestHeaderLimit(t *testing.T) {
	e := newEdge(t, edgeOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})
	status := func(headerBytes int) int {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nConnection: close\r\n\r\n", strings.Repeat("p", headerBytes))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(1 << 10); got != http.StatusOK {
		t.Errorf("1 KiB of headers = %d, want 200", got)
	}
	// net/http allows 4 KiB of slack over MaxHeaderBytes.
	if got := status(server.DefaultMaxHeaderBytes + 8<<10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d bytes of headers = %d, want 431", server.DefaultMaxHeaderBytes+8<<10, got)
	}
}
