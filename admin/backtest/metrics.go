package backtest

import (
	"strings"

	"github.com/riskengine/risk/engine"
)

// class is what the feedback labels of a payment say about it.
type class int8

const (
	unlabelled class = iota
	good
	bad
)

// classOf classifies one label: fraud and chargeback are bad, legit and
// challenge_passed are good; anything else (challenge_failed, "") says
// nothing certain.
func classOf(label string) class {
	switch label {
	case engine.LabelFraud, engine.LabelChargeback:
		return bad
	case engine.LabelLegit, engine.LabelChallengePassed:
		return good
	}
	return unlabelled
}

// classify classifies a decision by all its labels. Bad wins over good: a
// chargeback arriving after a passed challenge is the final word.
func classify(labels []engine.Label) class {
	c := unlabelled
	for _, l := range labels {
		c = max(c, classOf(l.Label))
	}
	return c
}

// blocked reports whether an outcome stops the payment as it stands:
// challenge and deny both do.
func blocked(o engine.Outcome) bool { return o == engine.Challenge || o == engine.Deny }

// Metrics measures one set of outcomes against the labels. A payment is
// blocked when its outcome is challenge or deny; unlabelled payments count
// in none of these figures.
type Metrics struct {
	// Caught counts bad payments blocked; Missed bad payments allowed.
	Caught int64 `json:"caught"`
	Missed int64 `json:"missed"`
	// GoodBlocked counts good payments blocked; GoodAllowed good payments
	// allowed.
	GoodBlocked int64 `json:"good_blocked"`
	GoodAllowed int64 `json:"good_allowed"`
	// Precision is Caught / (Caught + GoodBlocked); nil when no labelled
	// payment was blocked.
	Precision *float64 `json:"precision"`
	// Recall is Caught / (Caught + Missed); nil when no payment is
	// labelled bad.
	Recall *float64 `json:"recall"`
}

func (m *Metrics) add(c class, o engine.Outcome) {
	switch {
	case c == bad && blocked(o):
		m.Caught++
	case c == bad:
		m.Missed++
	case c == good && blocked(o):
		m.GoodBlocked++
	case c == good:
		m.GoodAllowed++
	}
}

// finish computes the ratios from the counts.
func (m *Metrics) finish() {
	m.Precision = ratio(m.Caught, m.Caught+m.GoodBlocked)
	m.Recall = ratio(m.Caught, m.Caught+m.Missed)
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(a) / float64(b)
	return &r
}

// RuleStats is what one rule did over a replay.
type RuleStats struct {
	ID     string        `json:"id"`
	Mode   engine.Mode   `json:"mode"`
	Action engine.Action `json:"action"`
	// Hits counts payments the rule matched, shadow rules included.
	Hits int64 `json:"hits"`
	// Decisive counts payments whose outcome this rule determined (an
	// allow, challenge or deny rule that won; see engine.Combine).
	Decisive int64 `json:"decisive"`
	// Errors counts payments on which the rule failed at run time.
	Errors int64 `json:"errors"`
}

// ruleTally counts rule results. A compiled set reports its rules in the
// same order for every payment, so results are tallied by position.
type ruleTally struct {
	stats []RuleStats
	index map[string]int // rule id -> position
}

func (t *ruleTally) add(results []engine.RuleResult, determinedBy string) {
	if t.stats == nil {
		t.stats = make([]RuleStats, len(results))
		t.index = make(map[string]int, len(results))
		for i, r := range results {
			t.stats[i] = RuleStats{ID: r.ID, Mode: r.Mode, Action: r.Action}
			t.index[r.ID] = i
		}
	}
	for i := range results {
		r := &results[i]
		switch {
		case r.Error != "":
			t.stats[i].Errors++
		case r.Matched:
			t.stats[i].Hits++
		}
	}
	if id, ok := strings.CutPrefix(determinedBy, "rule:"); ok {
		if i, ok := t.index[id]; ok {
			t.stats[i].Decisive++
		}
	}
}

// outcomes lists the outcomes from most to least permissive, the order of
// every table.
var outcomes = [3]engine.Outcome{engine.Allow, engine.Challenge, engine.Deny}

func outcomeIndex(o engine.Outcome) int {
	switch o {
	case engine.Challenge:
		return 1
	case engine.Deny:
		return 2
	}
	return 0
}

// OutcomeCounts counts payments per outcome.
type OutcomeCounts struct {
	Allow     int64 `json:"allow"`
	Challenge int64 `json:"challenge"`
	Deny      int64 `json:"deny"`
}

func (c *OutcomeCounts) add(o engine.Outcome) {
	switch o {
	case engine.Challenge:
		c.Challenge++
	case engine.Deny:
		c.Deny++
	default:
		c.Allow++
	}
}

// Amounts sums payment amounts per currency, in minor units: amounts in
// different currencies are never added together.
type Amounts map[string]int64

func (a Amounts) add(currency string, amount int64) { a[currency] += amount }
