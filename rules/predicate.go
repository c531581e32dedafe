package rules

import (
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/riskengine/risk/engine"
)

// Predicate is a compiled boolean filter over a decided payment: the payment
// fields plus `decision` (allow|challenge|deny), `score` and `labels` (the
// feedback labels attached so far). Features use it for `where`. It is safe
// for concurrent use.
type Predicate struct {
	src  string
	prog *vm.Program
}

// CompilePredicate compiles a filter expression. Errors are a
// *CompileError with positions.
func CompilePredicate(src string) (*Predicate, error) {
	t := paymentTypes()
	t["decision"] = types.String
	t["score"] = types.Int
	t["labels"] = types.TypeOf([]string{})
	c := newCompiler(t, nil)
	if len(src) > MaxExpressionLen {
		return nil, &CompileError{Errors: []*Error{{Field: "where", Message: fmt.Sprintf("where is longer than %d characters", MaxExpressionLen)}}}
	}
	prog, errs := c.compile(src)
	if len(errs) > 0 {
		for _, e := range errs {
			e.Field = "where"
		}
		return nil, &CompileError{Errors: errs}
	}
	return &Predicate{src: src, prog: prog}, nil
}

// String returns the source expression.
func (p *Predicate) String() string { return p.src }

// Match reports whether rec passes the filter. A run-time failure is an
// error and the record does not match.
func (p *Predicate) Match(rec *engine.Record) (ok bool, err error) {
	e := envPool.Get().(*env)
	defer e.release()
	e.fillPayment(&rec.Payment)
	e.top["decision"] = string(rec.Outcome)
	e.top["score"] = rec.Score
	labels := make([]string, len(rec.Labels))
	for i, l := range rec.Labels {
		labels[i] = l.Label
	}
	e.top["labels"] = labels
	defer func() {
		delete(e.top, "decision")
		delete(e.top, "score")
		delete(e.top, "labels")
		if v := recover(); v != nil {
			ok, err = false, fmt.Errorf("where %q: panic: %v", p.src, v)
		}
	}()
	out, err := expr.Run(p.prog, e.top)
	if err != nil {
		return false, fmt.Errorf("where %q: %w", p.src, err)
	}
	b, _ := out.(bool)
	return b, nil
}
