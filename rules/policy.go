package rules

import (
	"fmt"
	"sync"

	"github.com/expr-lang/expr/vm"

	"github.com/riskengine/risk/engine"
)

// PaymentPredicate is a compiled boolean expression over a payment alone:
// the payment fields as rules name them, account.age_days included, but no
// features, limits or decision. Limit policies use it to choose a segment
// ("account.age_days < 7"). It is immutable and safe for concurrent use.
type PaymentPredicate struct {
	src  string
	prog *vm.Program
	vms  sync.Pool
}

// CompilePaymentPredicate compiles a segment expression. Errors are a
// *CompileError whose errors carry the field "when" and 1-based positions.
func CompilePaymentPredicate(src string) (*PaymentPredicate, error) {
	if src == "" {
		return nil, &CompileError{Errors: []*Error{{Field: "when", Message: "expression is required"}}}
	}
	if len(src) > MaxExpressionLen {
		return nil, &CompileError{Errors: []*Error{{Field: "when", Message: fmt.Sprintf("expression is longer than %d characters", MaxExpressionLen)}}}
	}
	prog, errs := newCompiler(paymentTypes(), nil).compile(src)
	if len(errs) > 0 {
		for _, e := range errs {
			e.Field = "when"
		}
		return nil, &CompileError{Errors: errs}
	}
	p := &PaymentPredicate{src: src, prog: prog}
	p.vms.New = func() any { return &vm.VM{MemoryBudget: MemoryBudget} }
	return p, nil
}

// String returns the source expression.
func (p *PaymentPredicate) String() string { return p.src }

// MatchPayment reports whether pay satisfies the expression. A run-time
// failure is an error and does not match; it never panics.
func (p *PaymentPredicate) MatchPayment(pay *engine.Payment) (ok bool, err error) {
	e := envPool.Get().(*env)
	defer e.release()
	e.fillPayment(pay)
	machine := p.vms.Get().(*vm.VM)
	defer p.vms.Put(machine)
	matched, errText := run(machine, p.prog, e.top)
	if errText != "" {
		return false, fmt.Errorf("when %q: %s", p.src, errText)
	}
	return matched, nil
}
