package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/riskengine/risk/server/openapi"
)

// TestOpenAPIServed: GET /openapi.json answers the document as JSON
// without a key, even where every other route needs one.
func TestOpenAPIServed(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys})
	resp, err := http.Get(e.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, want) {
		t.Errorf("GET /openapi.json = %d %q, %d bytes; want 200 application/json, the document's %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got), len(want))
	}
}
