package server_test

import (
	"net/http"
	"testing"
)

// TestAccessLog: one JSON access record per request, with the request id
// the client got back (or sent), the route pattern, the status, the error
// code and the key's name.
func TestAccessLog(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys})
	var got []string
	for _, r := range []struct {
		key, method, path string
		body              any
		want              int
	}{
		{"gateway-key", "POST", "/v1/decisions", payment("t_log"), http.StatusOK},
		{"gateway-key", "POST", "/v1/decisions", `{"amount":1}`, http.StatusBadRequest},
		{"", "GET", "/v1/decisions/dec_1", nil, http.StatusUnauthorized},
		{"auditor-key", "GET", "/v1/decisions/dec_1", nil, http.StatusNotFound},
		{"", "GET", "/healthz", nil, http.StatusOK},
	} {
		code, h, body := e.send(r.key, r.method, r.path, r.body)
		if code != r.want {
			t.Fatalf("%s %s = %d %s", r.method, r.path, code, body)
		}
		got = append(got, h.Get("X-Request-Id"))
	}
	recs := e.accessRecords()
	if len(recs) != len(got) {
		t.Fatalf("%d access records for %d requests:\n%s", len(recs), len(got), e.logs.String())
	}
	want := []struct {
		route  string
		status float64
		code   any
		key    any
	}{
		{"/v1/decisions", 200, nil, "gateway-client"},
		{"/v1/decisions", 400, "required", "gateway-client"},
		{"/v1/decisions/:id", 401, "unauthorized", nil},
		{"/v1/decisions/:id", 404, "not_found", "auditor-client"},
		{"/healthz", 200, nil, nil},
	}
	for i, r := range recs {
		if r["request_id"] != got[i] || got[i] == "" {
			t.Errorf("record %d request_id = %v, answer had %q", i, r["request_id"], got[i])
		}
		if r["route"] != want[i].route || r["status"] != want[i].status || r["error_code"] != want[i].code || r["key"] != want[i].key {
			t.Errorf("record %d = %v, want %+v", i, r, want[i])
		}
		if r["level"] != "INFO" || r["duration_us"] == nil || r["method"] == nil {
			t.Errorf("record %d lacks fields: %v", i, r)
		}
	}
	// A request id sent by the client is kept, so a gateway can correlate.
	req, _ := http.NewRequest("GET", e.url+"/healthz", nil)
	req.Header.Set("X-Request-Id", "gw-trace-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recs = e.accessRecords()
	if resp.Header.Get("X-Request-Id") != "gw-trace-42" || recs[len(recs)-1]["request_id"] != "gw-trace-42" {
		t.Errorf("client request id not kept: %q, %v", resp.Header.Get("X-Request-Id"), recs[len(recs)-1])
	}
}
