package backtest

import (
	"time"

	"github.com/riskengine/risk/engine"
)

// Result is what a finished backtest found: how the candidate would have
// decided the replayed decisions compared with how they were decided.
type Result struct {
	// Replayed counts the stored decisions in the time range that passed
	// the filters.
	Replayed int64 `json:"replayed"`
	// Changed counts those whose outcome the candidate changes.
	Changed int64 `json:"changed"`
	// Degraded counts replayed decisions that were degraded when made:
	// their old outcome may be the fallback rather than the rules'.
	Degraded int64 `json:"degraded"`
	// Transitions is the table of old to new outcomes, unchanged cells
	// included, in the order allow, challenge, deny; empty cells are left
	// out.
	Transitions []Transition `json:"transitions"`
	// Rules lists the candidate's rules in rule set order.
	Rules []RuleHits `json:"rules"`
	// Labels measures old and new outcomes against the feedback labels.
	Labels LabelReport `json:"labels"`
	// Flipped is a sample of changed decisions: the first ones in commit
	// order, up to Config.SampleSize.
	Flipped []Flip `json:"flipped"`
	// MissingFeatures counts, per feature the candidate was compiled
	// with, replayed decisions that did not record it (it was defined
	// later); rules read it as 0 there.
	MissingFeatures map[string]int64 `json:"missing_features,omitempty"`
}

// Transition is one cell of the old to new outcome table.
type Transition struct {
	From  engine.Outcome `json:"from"`
	To    engine.Outcome `json:"to"`
	Count int64          `json:"count"`
	// Amounts sums the payments' amounts per currency, in minor units.
	Amounts Amounts `json:"amounts"`
}

// RuleHits is what one candidate rule did, and how often the rule with the
// same id matched when the decisions were made.
type RuleHits struct {
	RuleStats
	// OldHits counts replayed decisions in which a rule with this id
	// matched at the time (0 for a new rule).
	OldHits int64 `json:"old_hits"`
}

// LabelReport measures old and new outcomes against feedback labels:
// fraud and chargeback are bad, legit and challenge_passed good (bad wins
// when both are present); other decisions are unlabelled and count in no
// ratio.
type LabelReport struct {
	Bad        int64   `json:"bad"`
	Good       int64   `json:"good"`
	Unlabelled int64   `json:"unlabelled"`
	Old        Metrics `json:"old"`
	New        Metrics `json:"new"`
	// NewlyCaught counts bad payments allowed before and blocked now;
	// NewlyMissed bad payments blocked before and allowed now.
	NewlyCaught int64 `json:"newly_caught"`
	NewlyMissed int64 `json:"newly_missed"`
	// NewlyBlockedGood counts good payments allowed before and blocked
	// (challenged or denied) now.
	NewlyBlockedGood int64 `json:"newly_blocked_good"`
}

// Flip is one decision whose outcome the candidate changes.
type Flip struct {
	DecisionID      string         `json:"decision_id"`
	TransactionID   string         `json:"transaction_id"`
	EvaluatedAt     time.Time      `json:"evaluated_at"`
	Amount          int64          `json:"amount"`
	Currency        string         `json:"currency"`
	MerchantID      string         `json:"merchant_id,omitempty"`
	Old             engine.Outcome `json:"old"`
	New             engine.Outcome `json:"new"`
	OldDeterminedBy string         `json:"old_determined_by"`
	NewDeterminedBy string         `json:"new_determined_by"`
	Labels          []string       `json:"labels,omitempty"`
}

// tally accumulates a Result, one replayed decision at a time. It is used
// by one goroutine.
type tally struct {
	cells      [3][3]cell // [old][new]
	rules      ruleTally
	oldHits    map[string]int64
	labels     LabelReport
	flipped    []Flip
	sampleSize int
	replayed   int64
	changed    int64
	degraded   int64

	features []string       // the candidate's feature names
	featIdx  map[string]int // name -> index in features
	stamp    []uint64       // per feature: the replay count it was last seen at
	missing  []int64
}

type cell struct {
	count   int64
	amounts Amounts
}

func newTally(featureNames []string, sampleSize int) *tally {
	t := &tally{
		sampleSize: sampleSize, oldHits: map[string]int64{},
		features: featureNames, featIdx: make(map[string]int, len(featureNames)),
		stamp: make([]uint64, len(featureNames)), missing: make([]int64, len(featureNames)),
	}
	for i, n := range featureNames {
		t.featIdx[n] = i
	}
	return t
}

// add records one replayed decision: its stored record, and the
// candidate's results, outcome and what determined it.
func (t *tally) add(rec *engine.Record, results []engine.RuleResult, o engine.Outcome, by string) {
	t.replayed++
	old := rec.Outcome
	c := &t.cells[outcomeIndex(old)][outcomeIndex(o)]
	c.count++
	if c.amounts == nil {
		c.amounts = Amounts{}
	}
	c.amounts.add(rec.Payment.Currency, rec.Payment.Amount)
	if rec.Degraded {
		t.degraded++
	}
	t.rules.add(results, by)
	for i := range rec.Rules {
		if r := &rec.Rules[i]; r.Matched && r.Error == "" {
			if _, ok := t.rules.index[r.ID]; ok {
				t.oldHits[r.ID]++
			}
		}
	}
	t.addLabels(rec, old, o)
	t.addMissing(rec.Features)
	if old != o {
		t.changed++
		if len(t.flipped) < t.sampleSize {
			t.flipped = append(t.flipped, flipOf(rec, o, by))
		}
	}
}

func (t *tally) addLabels(rec *engine.Record, old, o engine.Outcome) {
	cl := classify(rec.Labels)
	switch cl {
	case bad:
		t.labels.Bad++
		switch {
		case !blocked(old) && blocked(o):
			t.labels.NewlyCaught++
		case blocked(old) && !blocked(o):
			t.labels.NewlyMissed++
		}
	case good:
		t.labels.Good++
		if !blocked(old) && blocked(o) {
			t.labels.NewlyBlockedGood++
		}
	default:
		t.labels.Unlabelled++
	}
	t.labels.Old.add(cl, old)
	t.labels.New.add(cl, o)
}

// addMissing counts the candidate's features absent from a record.
func (t *tally) addMissing(fv []engine.FeatureValue) {
	gen := uint64(t.replayed)
	for i := range fv {
		if j, ok := t.featIdx[fv[i].Name]; ok {
			t.stamp[j] = gen
		}
	}
	for j, s := range t.stamp {
		if s != gen {
			t.missing[j]++
		}
	}
}

func flipOf(rec *engine.Record, o engine.Outcome, by string) Flip {
	f := Flip{
		DecisionID: rec.ID, TransactionID: rec.TransactionID, EvaluatedAt: rec.EvaluatedAt.UTC(),
		Amount: rec.Payment.Amount, Currency: rec.Payment.Currency, MerchantID: rec.Payment.Merchant.ID,
		Old: rec.Outcome, New: o, OldDeterminedBy: rec.DeterminedBy, NewDeterminedBy: by,
	}
	for _, l := range rec.Labels {
		f.Labels = append(f.Labels, l.Label)
	}
	return f
}

// result returns the accumulated Result. ruleOrder lists the candidate's
// evaluated rules, used when nothing was replayed.
func (t *tally) result(ruleOrder []RuleStats) *Result {
	r := &Result{
		Replayed: t.replayed, Changed: t.changed, Degraded: t.degraded,
		Transitions: []Transition{}, Labels: t.labels, Flipped: t.flipped,
	}
	if r.Flipped == nil {
		r.Flipped = []Flip{}
	}
	for i, from := range outcomes {
		for j, to := range outcomes {
			if c := t.cells[i][j]; c.count > 0 {
				r.Transitions = append(r.Transitions, Transition{From: from, To: to, Count: c.count, Amounts: c.amounts})
			}
		}
	}
	stats := t.rules.stats
	if stats == nil {
		stats = ruleOrder
	}
	r.Rules = make([]RuleHits, len(stats))
	for i, s := range stats {
		r.Rules[i] = RuleHits{RuleStats: s, OldHits: t.oldHits[s.ID]}
	}
	r.Labels.Old.finish()
	r.Labels.New.finish()
	for j, n := range t.missing {
		if n > 0 {
			if r.MissingFeatures == nil {
				r.MissingFeatures = map[string]int64{}
			}
			r.MissingFeatures[t.features[j]] = n
		}
	}
	return r
}
