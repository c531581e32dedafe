package notify

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/riskengine/risk/engine"
)

var alertIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// AlertRule fires when a live rate, over Window, is above (Op ">") or
// below ("<") Threshold and/or BaselineMultiple times its baseline: the
// same hour of day over the seven days before. Every condition given must
// hold. Rates are shares of decisions (0 to 1); decision_rate is decisions
// per second. The window needs MinDecisions decisions (for decision_rate,
// the baseline does) or the rule stays as it is.
type AlertRule struct {
	ID               string   `json:"id"`
	Name             string   `json:"name,omitempty"`
	Metric           string   `json:"metric"`
	Rule             string   `json:"rule,omitempty"`
	Window           string   `json:"window"`
	Op               string   `json:"op"`
	Threshold        *float64 `json:"threshold,omitempty"`
	BaselineMultiple *float64 `json:"baseline_multiple,omitempty"`
	MinDecisions     int      `json:"min_decisions,omitempty"`
	Enabled          bool     `json:"enabled"`
	window           time.Duration
}

func f(v float64) *float64 { return &v }

// DefaultAlertRules are stored at the first start: a deny spike, degraded
// decisions above 1 %, and traffic down by more than 80 %.
func DefaultAlertRules() []AlertRule {
	return []AlertRule{
		{ID: "deny_spike", Name: "Deny rate over 5 minutes above 3x its 7-day baseline for the hour and above 2%", Metric: MetricDenyRate, Window: "5m", Op: ">", Threshold: f(0.02), BaselineMultiple: f(3), MinDecisions: 100, Enabled: true},
		{ID: "degraded", Name: "Degraded decisions above 1% over 5 minutes", Metric: MetricDegradedRate, Window: "5m", Op: ">", Threshold: f(0.01), MinDecisions: 100, Enabled: true},
		{ID: "traffic_drop", Name: "Decision rate over 15 minutes down more than 80% from its 7-day baseline for the hour", Metric: MetricDecisionRate, Window: "15m", Op: "<", BaselineMultiple: f(0.2), MinDecisions: 1000, Enabled: true},
	}
}

// check validates r and fills in its defaults.
func (r *AlertRule) check() error {
	bad := func(field, code, msg string) error { return engine.Invalid(field, code, msg) }
	if !alertIDPattern.MatchString(r.ID) {
		return bad("id", "invalid_id", "id must be 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a letter")
	}
	if len(r.Name) > MaxDescriptionLen {
		return bad("name", "too_long", fmt.Sprintf("name is longer than %d characters", MaxDescriptionLen))
	}
	switch r.Metric {
	case MetricDenyRate, MetricChallengeRate, MetricAllowRate, MetricDegradedRate, MetricDecisionRate:
		if r.Rule != "" {
			return bad("rule", "unexpected", "rule is only for metric rule_hit_rate")
		}
	case MetricRuleHitRate:
		if r.Rule == "" || len(r.Rule) > 64 {
			return bad("rule", "required", "metric rule_hit_rate needs the rule id")
		}
	default:
		return bad("metric", "unknown_metric", "metric must be deny_rate, challenge_rate, allow_rate, degraded_rate, rule_hit_rate or decision_rate")
	}
	d, err := time.ParseDuration(r.Window)
	if err != nil || d < time.Minute || d > MaxAlertWindow || d%time.Minute != 0 {
		return bad("window", "invalid_window", "window must be whole minutes from 1m to 1h, such as 5m")
	}
	r.window, r.Window = d, shortDuration(d)
	if r.Op != ">" && r.Op != "<" {
		return bad("op", "invalid_op", `op must be ">" or "<"`)
	}
	if r.Threshold == nil && r.BaselineMultiple == nil {
		return bad("threshold", "required", "give a threshold, a baseline_multiple or both")
	}
	if r.Threshold != nil && (math.IsNaN(*r.Threshold) || *r.Threshold < 0 || (r.Metric != MetricDecisionRate && *r.Threshold > 1)) {
		return bad("threshold", "invalid_threshold", "threshold must be a share from 0 to 1 (decisions per second for decision_rate)")
	}
	if r.BaselineMultiple != nil && !(*r.BaselineMultiple > 0 && *r.BaselineMultiple <= 1000) {
		return bad("baseline_multiple", "invalid_baseline_multiple", "baseline_multiple must be above 0 and at most 1000")
	}
	if r.MinDecisions < 0 || r.MinDecisions > 10_000_000 {
		return bad("min_decisions", "invalid_min_decisions", "min_decisions must be between 0 and 10000000")
	}
	return nil
}

func shortDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// holds reports whether r's conditions hold for value and baseline. A
// baseline condition without a baseline does not hold.
func (r *AlertRule) holds(value float64, baseline *float64) bool {
	cmp := func(x, y float64) bool {
		if r.Op == ">" {
			return x > y
		}
		return x < y
	}
	if r.Threshold != nil && !cmp(value, *r.Threshold) {
		return false
	}
	if r.BaselineMultiple != nil && (baseline == nil || !cmp(value, *r.BaselineMultiple**baseline)) {
		return false
	}
	return true
}
