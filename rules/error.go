package rules

import (
	"fmt"
	"strings"

	"github.com/riskengine/risk/engine"
)

// Error is one problem with one rule. Line and Column locate it in the
// expression (1-based; zero when the problem is not in the expression).
type Error struct {
	Rule    string `json:"rule,omitempty"`
	Field   string `json:"field"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Message)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (%d:%d)", e.Line, e.Column)
	}
	return b.String()
}

// CompileError holds every problem found while compiling a rule set or an
// expression. It wraps engine.ErrUnprocessable.
type CompileError struct {
	Errors []*Error
}

// Error implements error.
func (e *CompileError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, x := range e.Errors {
		msgs[i] = x.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap makes a CompileError match engine.ErrUnprocessable.
func (e *CompileError) Unwrap() error { return engine.ErrUnprocessable }

// Details implements engine.Detailer: the list of errors.
func (e *CompileError) Details() any { return e.Errors }
