package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/expr-lang/expr/vm"

	"github.com/riskengine/risk/engine"
)

// Set is a compiled rule set. It is immutable and safe for concurrent use.
type Set struct {
	version    int64
	spec       Spec
	thresholds engine.Thresholds
	compiled   []compiledRule
	features   []string
	keys       featureKeys
	vms        sync.Pool
}

type compiledRule struct {
	info *engine.RuleInfo // shared by every result of the rule
	prog *vm.Program
}

var _ engine.RuleSet = (*Set)(nil)

// Compile checks and compiles every rule of spec against env. It is all or
// nothing: any problem returns a *CompileError listing every problem found
// and no Set. version is the number the Set reports.
func Compile(spec Spec, env Env, version int64) (*Set, error) {
	var errs []*Error
	if len(spec.Rules) > MaxRules {
		errs = append(errs, &Error{Field: "rules", Message: fmt.Sprintf("a rule set holds at most %d rules", MaxRules)})
		return nil, &CompileError{Errors: errs}
	}
	if spec.ChallengeThreshold < 0 || spec.DenyThreshold < 0 {
		errs = append(errs, &Error{Field: "thresholds", Message: "thresholds must not be negative"})
	}
	if spec.ChallengeThreshold > 0 && spec.DenyThreshold > 0 && spec.DenyThreshold < spec.ChallengeThreshold {
		errs = append(errs, &Error{Field: "deny_threshold", Message: "deny_threshold must not be below challenge_threshold"})
	}
	c := newCompiler(ruleTypes(env.Features), env.Lists)
	s := &Set{
		version:    version,
		thresholds: engine.Thresholds{Challenge: spec.ChallengeThreshold, Deny: spec.DenyThreshold},
		features:   env.Features,
		keys:       newFeatureKeys(env.Features),
	}
	s.spec = spec.Canonical()
	seen := make(map[string]bool, len(spec.Rules))
	for _, r := range s.spec.Rules {
		ruleErrs := r.check()
		if r.ID != "" && seen[r.ID] {
			ruleErrs = append(ruleErrs, &Error{Rule: r.ID, Field: "id", Message: fmt.Sprintf("duplicate rule id %q", r.ID)})
		}
		seen[r.ID] = true
		if r.Expression != "" && len(r.Expression) <= MaxExpressionLen {
			prog, exprErrs := c.compile(r.Expression)
			for _, e := range exprErrs {
				e.Rule = r.ID
			}
			ruleErrs = append(ruleErrs, exprErrs...)
			if len(ruleErrs) == 0 && r.Mode != engine.ModeDisabled {
				s.compiled = append(s.compiled, compiledRule{info: &engine.RuleInfo{
					ID: r.ID, Name: r.Name, Version: r.Version, Mode: r.Mode,
					Action: r.Action, Score: r.Score, Reason: r.Reason, Message: r.Message,
				}, prog: prog})
			}
		}
		errs = append(errs, ruleErrs...)
	}
	if len(errs) > 0 {
		return nil, &CompileError{Errors: errs}
	}
	s.vms.New = func() any { return &vm.VM{MemoryBudget: MemoryBudget} }
	return s, nil
}

// CheckExpression compiles one expression against env and returns a
// *CompileError with every problem, or nil.
func CheckExpression(src string, env Env) error {
	if src == "" {
		return &CompileError{Errors: []*Error{{Field: "expression", Message: "expression is required"}}}
	}
	if len(src) > MaxExpressionLen {
		return &CompileError{Errors: []*Error{{Field: "expression", Message: fmt.Sprintf("expression is longer than %d characters", MaxExpressionLen)}}}
	}
	if _, errs := newCompiler(ruleTypes(env.Features), env.Lists).compile(src); len(errs) > 0 {
		return &CompileError{Errors: errs}
	}
	return nil
}

// Version implements engine.RuleSet.
func (s *Set) Version() int64 { return s.version }

// Thresholds implements engine.RuleSet.
func (s *Set) Thresholds() engine.Thresholds { return s.thresholds }

// Canonical is a copy of the spec with defaults filled in: the spec a
// compiled Set keeps (Set.Spec) and publishes. It does not compile, so
// Canonical().Hash() is the hash the spec would be published with, at the
// cost of a copy.
func (s Spec) Canonical() Spec {
	c := Spec{ChallengeThreshold: s.ChallengeThreshold, DenyThreshold: s.DenyThreshold, Rules: make([]Rule, len(s.Rules))}
	for i, r := range s.Rules {
		r.normalize()
		c.Rules[i] = r
	}
	return c
}

// Hash is the SHA-256 of the spec's canonical JSON form: equal specs have
// equal hashes.
func (s *Spec) Hash() string {
	b, _ := json.Marshal(s) // a Spec always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Spec returns the rule set as written, with defaults filled in. The caller
// must not modify it.
func (s *Set) Spec() Spec { return s.spec }

// Features returns the feature names the set was compiled against.
func (s *Set) Features() []string { return s.features }

// Evaluate implements engine.RuleSet. Each rule runs under its own recover
// so one failing rule is recorded as errored and the others still run.
func (s *Set) Evaluate(ctx context.Context, in *engine.Input, dst []engine.RuleResult) []engine.RuleResult {
	e := envPool.Get().(*env)
	defer e.release()
	e.fill(in, s.keys)
	machine := s.vms.Get().(*vm.VM)
	defer s.vms.Put(machine)
	dst = slices.Grow(dst, len(s.compiled))
	for i := range s.compiled {
		cr := &s.compiled[i]
		res := engine.RuleResult{RuleInfo: cr.info}
		if err := ctx.Err(); err != nil {
			res.Error = "not evaluated: " + err.Error()
		} else {
			res.Matched, res.Error = run(machine, cr.prog, e.top)
		}
		dst = append(dst, res)
	}
	return dst
}

// run evaluates one program and never panics.
func run(machine *vm.VM, prog *vm.Program, env map[string]any) (matched bool, errText string) {
	defer func() {
		if v := recover(); v != nil {
			matched, errText = false, fmt.Sprintf("panic: %v", v)
		}
	}()
	out, err := machine.Run(prog, env)
	if err != nil {
		return false, err.Error()
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Sprintf("result is %T, not bool", out)
	}
	return b, ""
}
