package features

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

//go:embed sample/features.yaml
var sample []byte

// Sample returns the bundled sample feature definitions file.
func Sample() []byte { return sample }

// ParseDefinitions decodes a YAML list of feature definitions. Unknown keys
// are errors.
func ParseDefinitions(data []byte) ([]Definition, error) {
	var defs []Definition
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&defs); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse feature definitions: %w", err)
	}
	return defs, nil
}
