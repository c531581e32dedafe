package openapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/riskengine/risk/server/openapi"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// TestDocumentIsValid: the document parses as OpenAPI 3.1, resolves every
// reference and passes kin-openapi's validation; every operation names its
// roles and its error answers.
func TestDocumentIsValid(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			roles, ok := op.Extensions["x-roles"].([]any)
			if !ok {
				t.Errorf("%s %s: no x-roles", method, path)
			}
			open := op.Security != nil && len(*op.Security) == 0
			if open != (len(roles) == 0) {
				t.Errorf("%s %s: x-roles %v but open %v", method, path, roles, open)
			}
			if op.OperationID == "" {
				t.Errorf("%s %s: no operationId", method, path)
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s %s: no default (error) response", method, path)
			}
		}
	}
	if n < 60 {
		t.Errorf("%d operations, want every route of the service", n)
	}
}

// TestDocsCopyIsIdentical: docs/openapi.yaml is this package's document,
// byte for byte. Copy it over after a change:
//
//	cp server/openapi/openapi.yaml docs/openapi.yaml
func TestDocsCopyIsIdentical(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, openapi.YAML()) {
		t.Error("docs/openapi.yaml differs from server/openapi/openapi.yaml; run: cp server/openapi/openapi.yaml docs/openapi.yaml")
	}
}

func TestJSON(t *testing.T) {
	b, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.OpenAPI != "3.1.0" || v.Paths["/v1/decisions"] == nil {
		t.Errorf("openapi %q, /v1/decisions %v", v.OpenAPI, v.Paths["/v1/decisions"])
	}
}
