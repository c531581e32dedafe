// Package openapi holds the OpenAPI 3.1 document of the service's HTTP API:
// every route the server registers, with its request, response and error
// bodies, the bearer API key scheme and the roles each operation needs
// (x-roles). The server serves it as JSON at GET /openapi.json; tests keep
// it true (see openapitest and the route test in the main package).
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var document []byte

// YAML returns the document as written, in YAML. The caller must not
// modify it.
func YAML() []byte { return document }

// toJSON is computed once: the document is a constant of the build, so
// its JSON form is too.
var toJSON = sync.OnceValues(func() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(document, &v); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	return b, nil
})

// JSON returns the document as JSON. It is safe for concurrent use; the
// caller must not modify the slice.
func JSON() ([]byte, error) { return toJSON() }
