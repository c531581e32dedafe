package engine_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// TestInvalidJSON: every encoding/json error becomes a *FieldError with a
// stable code and a message of our own, never the decoder's text.
func TestInvalidJSON(t *testing.T) {
	type body struct {
		N    int               `json:"n"`
		S    string            `json:"s"`
		L    []string          `json:"l"`
		At   time.Time         `json:"at"`
		Tags map[string]string `json:"tags"`
	}
	tests := []struct {
		name, in          string
		field, code, want string
	}{
		{"syntax", `{"n":`, "", "invalid_json", "the body is not valid JSON"},
		{"not an object", `[1]`, "", "invalid_json", "the body must be a JSON object"},
		{"string for int", `{"n":"1"}`, "n", "invalid_type", "n must be an integer, not a JSON string"},
		{"number for string", `{"s":1}`, "s", "invalid_type", "s must be a string, not a JSON number"},
		{"object for list", `{"l":{}}`, "l", "invalid_type", "l must be a list, not a JSON object"},
		{"list for map", `{"tags":[]}`, "tags", "invalid_type", "tags must be an object, not a JSON array"},
		{"bad time", `{"at":"yesterday"}`, "", "invalid_time", "times must be RFC 3339, such as 2026-01-02T15:04:05Z"},
		{"unknown field", `{"x":1}`, "x", "unknown_field", `unknown field "x"`},
		{"card number as a field name", `{"4111111111111111":1}`, "", "card_number_refused", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.in))
			dec.DisallowUnknownFields()
			var v body
			err := dec.Decode(&v)
			if err == nil {
				t.Fatal("decoded")
			}
			var fe *engine.FieldError
			if !errors.As(engine.InvalidJSON(err), &fe) {
				t.Fatalf("InvalidJSON(%v) is not a *FieldError", err)
			}
			if fe.Field != tt.field || fe.Code != tt.code || (tt.want != "" && fe.Message != tt.want) {
				t.Errorf("got %q %s %q, want %q %s %q", fe.Field, fe.Code, fe.Message, tt.field, tt.code, tt.want)
			}
			if strings.Contains(fe.Message, "json:") || strings.Contains(fe.Message, "4111") {
				t.Errorf("message %q carries the decoder's text", fe.Message)
			}
		})
	}
	// Any other error (a reader failing mid-body) is invalid_json without
	// its text.
	var fe *engine.FieldError
	if err := engine.InvalidJSON(errors.New("read tcp 10.0.0.1:443: reset")); !errors.As(err, &fe) || fe.Code != "invalid_json" || strings.Contains(fe.Message, "10.0.0.1") {
		t.Errorf("got %v", err)
	}
}

// TestOneJSONErrorMapper: engine.InvalidJSON is the only code that reads
// encoding/json's error text; every other package calls it.
func TestOneJSONErrorMapper(t *testing.T) {
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == filepath.Join(root, "engine", "jsonerror.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), `"json: unknown field`) {
			t.Errorf("%s matches encoding/json's error text; call engine.InvalidJSON instead", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
