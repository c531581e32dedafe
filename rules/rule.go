// Package rules compiles analysts' rules, written as expr-lang expressions,
// into immutable sets that the engine evaluates on every payment.
//
// Compile once, run many: every expression is type-checked against the
// declared environment (payment fields, features, limits, helpers) at
// compile time, so an unknown name or a non-boolean result is a compile
// error with a line and column, never a surprise on the payment path.
package rules

import (
	"fmt"
	"regexp"

	"github.com/riskengine/risk/engine"
)

// Rule is one analyst rule as written.
type Rule struct {
	ID          string        `json:"id" yaml:"id"`
	Name        string        `json:"name,omitempty" yaml:"name,omitempty"`
	Description string        `json:"description,omitempty" yaml:"description,omitempty"`
	Expression  string        `json:"expression" yaml:"expression"`
	Action      engine.Action `json:"action" yaml:"action"`
	Score       int           `json:"score,omitempty" yaml:"score,omitempty"`
	Mode        engine.Mode   `json:"mode,omitempty" yaml:"mode,omitempty"`
	Reason      string        `json:"reason,omitempty" yaml:"reason,omitempty"`
	Message     string        `json:"message,omitempty" yaml:"message,omitempty"`
	Version     int           `json:"version,omitempty" yaml:"version,omitempty"`
	// MaxHitRate is the rule guard's ceiling: a share of decisions, 0 to
	// 1, above which the live rule is switched to shadow by itself
	// (docs/admin-api.md, rule guard). Zero means no ceiling.
	MaxHitRate float64 `json:"max_hit_rate,omitempty" yaml:"max_hit_rate,omitempty"`
}

// Spec is a whole rule set as written: its rules and thresholds.
type Spec struct {
	ChallengeThreshold int    `json:"challenge_threshold" yaml:"challenge_threshold"`
	DenyThreshold      int    `json:"deny_threshold" yaml:"deny_threshold"`
	Rules              []Rule `json:"rules" yaml:"rules"`
}

// Bounds on what a rule may be.
const (
	MaxRules         = 5000
	MaxExpressionLen = 4096
	MaxIDLen         = 64
	MaxMessageLen    = 512
	// MaxNodes bounds the size of one compiled expression.
	MaxNodes = 500
	// MemoryBudget bounds the memory one evaluation may allocate, in
	// expr's abstract units.
	MemoryBudget = 100_000
)

var idPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]*$`)

// normalize fills in defaults: an empty mode is active, a zero version is 1.
func (r *Rule) normalize() {
	if r.Mode == "" {
		r.Mode = engine.ModeActive
	}
	if r.Version == 0 {
		r.Version = 1
	}
}

// check validates everything but the expression.
func (r *Rule) check() []*Error {
	var errs []*Error
	bad := func(field, msg string) { errs = append(errs, &Error{Rule: r.ID, Field: field, Message: msg}) }
	switch {
	case r.ID == "":
		bad("id", "id is required")
	case len(r.ID) > MaxIDLen || !idPattern.MatchString(r.ID):
		bad("id", fmt.Sprintf("id must start with a letter and hold at most %d letters, digits, '_', '.' or '-'", MaxIDLen))
	}
	switch r.Action {
	case engine.ActionAllow, engine.ActionChallenge, engine.ActionDeny, engine.ActionScore, engine.ActionReview:
	case "":
		bad("action", "action is required: allow, challenge, deny, score or review")
	default:
		bad("action", fmt.Sprintf("unknown action %q: use allow, challenge, deny, score or review", r.Action))
	}
	switch r.Mode {
	case engine.ModeActive, engine.ModeShadow, engine.ModeDisabled, "":
	default:
		bad("mode", fmt.Sprintf("unknown mode %q: use active, shadow or disabled", r.Mode))
	}
	if r.Score < -1000 || r.Score > 1000 {
		bad("score", "score must be between -1000 and 1000")
	}
	if len(r.Message) > MaxMessageLen || len(r.Description) > MaxMessageLen || len(r.Name) > MaxMessageLen {
		bad("message", fmt.Sprintf("name, description and message hold at most %d characters", MaxMessageLen))
	}
	if !(r.MaxHitRate >= 0 && r.MaxHitRate <= 1) {
		bad("max_hit_rate", "max_hit_rate must be a share between 0 and 1 (0 is no ceiling)")
	}
	if r.Expression == "" {
		bad("expression", "expression is required")
	} else if len(r.Expression) > MaxExpressionLen {
		bad("expression", fmt.Sprintf("expression is longer than %d characters", MaxExpressionLen))
	}
	return errs
}
