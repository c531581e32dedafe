package rules

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// File is a rule set file as analysts keep it in git: the spec plus the
// lists it expects, seeded when the engine starts on an empty data dir.
type File struct {
	Spec  `yaml:",inline"`
	Lists []ListSeed `json:"lists,omitempty" yaml:"lists,omitempty"`
}

// ListSeed is a named list and its initial items.
type ListSeed struct {
	Name  string   `json:"name" yaml:"name"`
	Kind  string   `json:"kind" yaml:"kind"`
	Items []string `json:"items,omitempty" yaml:"items,omitempty"`
}

// ParseFile decodes a YAML rule set file. Unknown keys are errors, so a
// misspelt key is not silently ignored.
func ParseFile(data []byte) (File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return File{}, &CompileError{Errors: []*Error{{Field: "file", Message: fmt.Sprintf("parse rule file: %v", err)}}}
	}
	return f, nil
}

// MarshalFile encodes f as YAML.
func MarshalFile(f File) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode rule file: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

//go:embed sample/rules.yaml
var sample embed.FS

// Sample returns the bundled sample rule set file.
func Sample() []byte {
	b, _ := sample.ReadFile("sample/rules.yaml") // embedded: cannot fail
	return b
}
