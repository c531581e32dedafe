package backtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// ReplayConfig configures an offline replay.
type ReplayConfig struct {
	// Rules is the rule set and the lists it seeds. in_list answers from
	// those seeds alone, and they never expire.
	Rules rules.File
	// Features are the feature definitions, computed from the events
	// themselves.
	Features []features.Definition
	// Explain adds each payment's feature values and rule results to its
	// decision line.
	Explain bool
}

// Summary is what an offline replay found.
type Summary struct {
	Payments int64         `json:"payments"`
	Outcomes OutcomeCounts `json:"outcomes"`
	// Amounts sums the amounts per outcome and currency, in minor units.
	Amounts map[engine.Outcome]Amounts `json:"amounts"`
	// Rules lists every evaluated rule in rule set order.
	Rules []RuleStats `json:"rules"`
	// Labels is present when at least one event carries a label.
	Labels *LabelSummary `json:"labels,omitempty"`
}

// LabelSummary measures the replayed outcomes against the events' labels:
// fraud and chargeback are bad, legit and challenge_passed good.
type LabelSummary struct {
	Bad        int64 `json:"bad"`
	Good       int64 `json:"good"`
	Unlabelled int64 `json:"unlabelled"`
	Metrics
}

// decisionLine is one line of replay output: the fields of the
// POST /v1/decisions response, then what produced the decision.
type decisionLine struct {
	DecisionID     string             `json:"decision_id"`
	TransactionID  string             `json:"transaction_id"`
	Decision       engine.Outcome     `json:"decision"`
	Score          int                `json:"score"`
	Reasons        []reasonJSON       `json:"reasons"`
	Limits         struct{}           `json:"limits"`
	RulesetVersion int64              `json:"ruleset_version"`
	Degraded       bool               `json:"degraded"`
	EvaluatedAt    time.Time          `json:"evaluated_at"`
	DeterminedBy   string             `json:"determined_by"`
	MatchedRules   []string           `json:"matched_rules"`
	Label          string             `json:"label,omitempty"`
	Features       map[string]float64 `json:"features,omitempty"`
	Rules          []ruleResultJSON   `json:"rules,omitempty"`
}

type reasonJSON struct {
	Rule    string `json:"rule"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type ruleResultJSON struct {
	ID      string        `json:"id"`
	Mode    engine.Mode   `json:"mode"`
	Action  engine.Action `json:"action"`
	Score   int           `json:"score"`
	Matched bool          `json:"matched"`
	Error   string        `json:"error,omitempty"`
}

// Replay decides events offline, in time order, and writes one decision
// per line to out. It sorts events in place by occurred_at; events at the
// same time keep their file order.
//
// Features are computed from the events alone and point-in-time correct:
// each payment sees exactly the payments before it (and those at the same
// instant earlier in the file), never a later one. Where filters see the
// replayed decision, not the label: a label is known only later.
//
// There are no limits offline: every limits.* value reads as zero, so
// rules on limits do not fire. The output is deterministic: the same
// inputs give byte-identical output. A decision's id is derived from its
// transaction id and its evaluated_at is the payment's occurred_at.
func Replay(ctx context.Context, cfg ReplayConfig, events []Event, out io.Writer) (*Summary, error) {
	mem, err := features.NewMemory(cfg.Features, compileFilter)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	lists, err := newSeedLists(cfg.Rules.Lists)
	if err != nil {
		return nil, err
	}
	set, err := rules.Compile(cfg.Rules.Spec, rules.Env{Features: mem.Names(), Lists: lists}, 0)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	slices.SortStableFunc(events, func(a, b Event) int { return a.Payment.OccurredAt.Compare(b.Payment.OccurredAt) })

	bw := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	sum := &Summary{Amounts: map[engine.Outcome]Amounts{}}
	var (
		tally    ruleTally
		labels   LabelSummary
		labelled bool
		fv       []engine.FeatureValue
		results  []engine.RuleResult
		limits   engine.Limits
		rec      engine.Record
	)
	th := set.Thresholds()
	for i := range events {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
		}
		ev := &events[i]
		p := &ev.Payment
		if fv, err = mem.Features(ctx, p, fv[:0]); err != nil {
			return nil, err
		}
		in := engine.Input{Payment: p, Features: fv, Limits: &limits, Now: p.OccurredAt}
		results = set.Evaluate(ctx, &in, results[:0])
		rec = engine.Record{Payment: *p, Features: fv, Rules: results, Thresholds: th}
		rec.ID, rec.TransactionID, rec.EvaluatedAt = decisionID(p.TransactionID), p.TransactionID, p.OccurredAt
		rec.Outcome, rec.Score, rec.Reasons, rec.DeterminedBy = engine.Combine(results, th)
		mem.Apply(&rec)

		if err := enc.Encode(toLine(&rec, ev.Label, cfg.Explain)); err != nil {
			return nil, fmt.Errorf("write decision: %w", err)
		}
		sum.Payments++
		sum.Outcomes.add(rec.Outcome)
		if sum.Amounts[rec.Outcome] == nil {
			sum.Amounts[rec.Outcome] = Amounts{}
		}
		sum.Amounts[rec.Outcome].add(p.Currency, p.Amount)
		tally.add(results, rec.DeterminedBy)
		c := classOf(ev.Label)
		switch c {
		case bad:
			labels.Bad++
		case good:
			labels.Good++
		default:
			labels.Unlabelled++
		}
		labelled = labelled || ev.Label != ""
		labels.add(c, rec.Outcome)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write decisions: %w", err)
	}
	sum.Rules = tally.stats
	if sum.Rules == nil {
		sum.Rules = []RuleStats{}
	}
	if labelled {
		labels.finish()
		sum.Labels = &labels
	}
	return sum, nil
}

// decisionID derives a stable decision id from a transaction id, so a
// replay's output does not change from run to run.
func decisionID(transactionID string) string {
	h := sha256.Sum256([]byte(transactionID))
	return "dec_" + hex.EncodeToString(h[:13])
}

func toLine(rec *engine.Record, label string, explain bool) *decisionLine {
	l := &decisionLine{
		DecisionID: rec.ID, TransactionID: rec.TransactionID, Decision: rec.Outcome, Score: rec.Score,
		Reasons: make([]reasonJSON, len(rec.Reasons)), EvaluatedAt: rec.EvaluatedAt.UTC(),
		DeterminedBy: rec.DeterminedBy, MatchedRules: []string{}, Label: label,
	}
	for i, r := range rec.Reasons {
		l.Reasons[i] = reasonJSON{Rule: r.Rule, Code: r.Code, Message: r.Message}
	}
	for _, r := range rec.Rules {
		if r.Matched && r.Error == "" {
			l.MatchedRules = append(l.MatchedRules, r.ID)
		}
	}
	if explain {
		l.Features = make(map[string]float64, len(rec.Features))
		for _, f := range rec.Features {
			l.Features[f.Name] = f.Value
		}
		l.Rules = make([]ruleResultJSON, len(rec.Rules))
		for i, r := range rec.Rules {
			l.Rules[i] = ruleResultJSON{ID: r.ID, Mode: r.Mode, Action: r.Action, Score: r.Score, Matched: r.Matched, Error: r.Error}
		}
	}
	return l
}

// compileFilter compiles feature where expressions with the rules
// package, as the live store does.
func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}
