package admin

import (
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// specDiff is what changed from one rule set to another. Rule versions
// alone do not make a change.
type specDiff struct {
	From       string            `json:"from"`
	To         string            `json:"to"`
	Added      []rules.Rule      `json:"added"`
	Removed    []rules.Rule      `json:"removed"`
	Changed    []ruleChange      `json:"changed"`
	Thresholds []thresholdChange `json:"thresholds"`
}

// ruleChange is one rule present on both sides with different content.
type ruleChange struct {
	ID     string     `json:"id"`
	Fields []string   `json:"fields"`
	Before rules.Rule `json:"before"`
	After  rules.Rule `json:"after"`
}

// thresholdChange is one threshold with different values.
type thresholdChange struct {
	Name   string `json:"name"`
	Before int    `json:"before"`
	After  int    `json:"after"`
}

// diffSpecs compares two specs: rules added and changed in to's order,
// removed in from's order.
func diffSpecs(from, to rules.Spec) specDiff {
	d := specDiff{Added: []rules.Rule{}, Removed: []rules.Rule{}, Changed: []ruleChange{}, Thresholds: []thresholdChange{}}
	if from.ChallengeThreshold != to.ChallengeThreshold {
		d.Thresholds = append(d.Thresholds, thresholdChange{"challenge_threshold", from.ChallengeThreshold, to.ChallengeThreshold})
	}
	if from.DenyThreshold != to.DenyThreshold {
		d.Thresholds = append(d.Thresholds, thresholdChange{"deny_threshold", from.DenyThreshold, to.DenyThreshold})
	}
	before := make(map[string]rules.Rule, len(from.Rules))
	for _, r := range from.Rules {
		before[r.ID] = r
	}
	after := make(map[string]bool, len(to.Rules))
	for _, r := range to.Rules {
		after[r.ID] = true
		old, ok := before[r.ID]
		if !ok {
			d.Added = append(d.Added, r)
			continue
		}
		if fields := changedFields(old, r); len(fields) > 0 {
			d.Changed = append(d.Changed, ruleChange{ID: r.ID, Fields: fields, Before: old, After: r})
		}
	}
	for _, r := range from.Rules {
		if !after[r.ID] {
			d.Removed = append(d.Removed, r)
		}
	}
	return d
}

// changedFields names the fields, by their JSON names, in which a and b
// differ. An empty mode is active.
func changedFields(a, b rules.Rule) []string {
	mode := func(m engine.Mode) engine.Mode {
		if m == "" {
			return engine.ModeActive
		}
		return m
	}
	var out []string
	add := func(differ bool, name string) {
		if differ {
			out = append(out, name)
		}
	}
	add(a.Name != b.Name, "name")
	add(a.Description != b.Description, "description")
	add(a.Expression != b.Expression, "expression")
	add(a.Action != b.Action, "action")
	add(a.Score != b.Score, "score")
	add(mode(a.Mode) != mode(b.Mode), "mode")
	add(a.Reason != b.Reason, "reason")
	add(a.Message != b.Message, "message")
	add(a.MaxHitRate != b.MaxHitRate, "max_hit_rate")
	return out
}

// diffSummary is a diff by rule ids, for the audit trail and imports.
type diffSummary struct {
	Added      []string          `json:"added"`
	Removed    []string          `json:"removed"`
	Changed    []string          `json:"changed"`
	Thresholds []thresholdChange `json:"thresholds"`
}

func (d specDiff) summary() diffSummary {
	ids := func(rs []rules.Rule) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.ID
		}
		return out
	}
	s := diffSummary{Added: ids(d.Added), Removed: ids(d.Removed), Changed: make([]string, len(d.Changed)), Thresholds: d.Thresholds}
	for i, c := range d.Changed {
		s.Changed[i] = c.ID
	}
	return s
}
