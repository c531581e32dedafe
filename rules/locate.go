package rules

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Locate is the 1-based line and column in the rule set file data where e
// stands: an expression's error is moved from its position inside the
// expression to the same character in the file, whatever the YAML style
// the expression is written in (plain, quoted, literal | or folded >);
// another error on a rule points at the field's value, or at the rule
// when the field is missing. It is 0, 0 when data does not parse or e
// cannot be placed (a rule without an id, say).
func Locate(data []byte, e *Error) (line, column int) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return 0, 0
	}
	root := doc.Content[0]
	if e.Rule == "" {
		if k, _ := lookup(root, e.Field); k != nil {
			return k.Line, k.Column
		}
		return 0, 0
	}
	rule := findRule(root, e.Rule)
	if rule == nil {
		return 0, 0
	}
	_, v := lookup(rule, e.Field)
	switch {
	case v == nil:
		return rule.Line, rule.Column
	case e.Field == "expression" && e.Line > 0 && v.Kind == yaml.ScalarNode:
		return inScalar(strings.Split(string(data), "\n"), v, e.Line, e.Column)
	}
	return v.Line, v.Column
}

// lookup is the key and value nodes of key in the mapping m, or nils.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// findRule is the mapping node of the rule with id in the file's rules,
// or nil. With a duplicate id it is the last one: the duplicate.
func findRule(root *yaml.Node, id string) *yaml.Node {
	_, seq := lookup(root, "rules")
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	var found *yaml.Node
	for _, r := range seq.Content {
		if _, v := lookup(r, "id"); v != nil && v.Value == id {
			found = r
		}
	}
	return found
}

// inScalar maps the 1-based line and column of a position in the scalar
// v's value to the position of the same character in the source lines.
// It walks the value and the source together: every non-space character
// of the value is the next non-space character of the source, whatever
// folding, indentation or quoting put between them. Where that does not
// hold (an escape sequence in a double-quoted string) it gives up and
// answers the scalar's own position.
func inScalar(src []string, v *yaml.Node, line, column int) (int, int) {
	value := []rune(v.Value)
	target := 0
	for l := 1; l < line && target < len(value); target++ {
		if value[target] == '\n' {
			l++
		}
	}
	target += column - 1
	if target < 0 || target >= len(value) {
		return v.Line, v.Column
	}
	// The scalar's first character: after the indicator line of a block
	// scalar, after the opening quote of a quoted one.
	sl, sc := v.Line-1, v.Column-1
	switch v.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		sl, sc = sl+1, 0
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		sc++
	}
	s := source{lines: src, line: sl}
	if sl >= len(src) {
		return v.Line, v.Column
	}
	s.text = []rune(src[sl])
	s.col = sc
	for i := 0; ; i++ {
		if isSpace(value[i]) {
			if i == target {
				return s.line + 1, s.col + 1
			}
			continue
		}
		if !s.skipSpace() {
			return v.Line, v.Column
		}
		if i == target {
			return s.line + 1, s.col + 1
		}
		c := s.text[s.col]
		if v.Style == yaml.DoubleQuotedStyle && c == '\\' {
			return v.Line, v.Column
		}
		if c != value[i] {
			return v.Line, v.Column
		}
		s.col++
		if v.Style == yaml.SingleQuotedStyle && c == '\'' {
			s.col++ // '' stands for '
		}
	}
}

// source is a cursor in the file's lines, in runes.
type source struct {
	lines     []string
	line, col int
	text      []rune
}

// skipSpace moves past spaces, tabs and line ends to the next character,
// and reports whether there is one.
func (s *source) skipSpace() bool {
	for {
		for s.col < len(s.text) && isSpace(s.text[s.col]) {
			s.col++
		}
		if s.col < len(s.text) {
			return true
		}
		s.line++
		if s.line >= len(s.lines) {
			return false
		}
		s.text, s.col = []rune(s.lines[s.line]), 0
	}
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }
