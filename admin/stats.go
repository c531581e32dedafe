package admin

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Rule statistics bounds.
const (
	// DefaultStatsPeriod is the period when from is not given.
	DefaultStatsPeriod = 30 * 24 * time.Hour
	// MaxStatsPeriod bounds to - from.
	MaxStatsPeriod = 366 * 24 * time.Hour
	// MaxStatsDecisions bounds the decisions one request scans; past it the
	// answer covers the newest ones and says truncated.
	MaxStatsDecisions = 1_000_000
)

// DecisionSearcher pages through stored decisions, newest first
// (features.Store).
type DecisionSearcher interface {
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
}

// RegisterStats adds the rule statistics to g (analysts and auditors):
//
//	GET /rules/stats?from=&to=        every rule that ran in the period
//	GET /rules/{id}/stats?from=&to=   one rule
//
// They scan the decisions evaluated in [from, to) (default: the 30 days
// before now). now is the clock; nil means time.Now.
func RegisterStats(g *echo.Group, require Require, decisions DecisionSearcher, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	h := &statsAPI{decisions: decisions, now: now}
	read := require(engine.RoleAnalyst, engine.RoleAuditor)
	g.GET("/rules/stats", h.all, read)
	g.GET("/rules/:id/stats", h.one, read)
}

type statsAPI struct {
	decisions DecisionSearcher
	now       func() time.Time
}

// ruleStatsJSON is what one rule did over a period. Hits count decisions
// where the rule matched (errored runs excluded). Against the labels
// attached since: fraud counts hits labelled fraud or chargeback, legit
// hits labelled legit or challenge_passed and neither of those. Shares and
// precision are null when their denominator is zero.
type ruleStatsJSON struct {
	Rule string `json:"rule"`
	// Evaluated counts the decisions the rule ran on.
	Evaluated int      `json:"evaluated"`
	Hits      hitsJSON `json:"hits"`
	// Labelled counts hits per label.
	Labelled map[string]int `json:"labelled"`
	Fraud    int            `json:"fraud"`
	Legit    int            `json:"legit"`
	// FraudShare and LegitShare are Fraud and Legit over all hits.
	FraudShare *float64 `json:"fraud_share"`
	LegitShare *float64 `json:"legit_share"`
	// Precision is Fraud / (Fraud + Legit): of the labelled hits, the share
	// that were bad.
	Precision *float64 `json:"precision"`
	// FalsePositives are the hits labelled legit (the honest customers the
	// rule stopped or stepped up).
	FalsePositives int `json:"false_positives"`
}

type hitsJSON struct {
	Active int `json:"active"`
	Shadow int `json:"shadow"`
	Total  int `json:"total"`
}

type statsPeriodJSON struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Decisions int       `json:"decisions"`
	Truncated bool      `json:"truncated"`
}

type allStatsJSON struct {
	statsPeriodJSON
	Rules []*ruleStatsJSON `json:"rules"`
}

type oneStatsJSON struct {
	statsPeriodJSON
	Stats *ruleStatsJSON `json:"stats"`
}

// all is GET /admin/rules/stats.
func (h *statsAPI) all(c echo.Context) error {
	period, stats, err := h.compute(c, "")
	if err != nil {
		return err
	}
	out := allStatsJSON{statsPeriodJSON: period, Rules: make([]*ruleStatsJSON, 0, len(stats))}
	for _, s := range stats {
		out.Rules = append(out.Rules, s)
	}
	sort.Slice(out.Rules, func(i, j int) bool { return out.Rules[i].Rule < out.Rules[j].Rule })
	return c.JSON(http.StatusOK, out)
}

// one is GET /admin/rules/{id}/stats. A rule that never ran in the period
// has zero figures.
func (h *statsAPI) one(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	period, stats, err := h.compute(c, id)
	if err != nil {
		return err
	}
	s := stats[id]
	if s == nil {
		s = &ruleStatsJSON{Rule: id, Labelled: map[string]int{}}
	}
	return c.JSON(http.StatusOK, oneStatsJSON{statsPeriodJSON: period, Stats: s})
}

// compute scans the period's decisions and tallies every rule (or only
// rule, when not empty).
func (h *statsAPI) compute(c echo.Context, rule string) (statsPeriodJSON, map[string]*ruleStatsJSON, error) {
	from, err := queryTime(c, "from")
	if err != nil {
		return statsPeriodJSON{}, nil, err
	}
	to, err := queryTime(c, "to")
	if err != nil {
		return statsPeriodJSON{}, nil, err
	}
	if to.IsZero() {
		to = h.now()
	}
	if from.IsZero() {
		from = to.Add(-DefaultStatsPeriod)
	}
	switch {
	case !from.Before(to):
		return statsPeriodJSON{}, nil, engine.Invalid("from", "invalid_range", "from must be before to")
	case to.Sub(from) > MaxStatsPeriod:
		return statsPeriodJSON{}, nil, engine.Invalid("from", "invalid_range", "the period is at most 366 days")
	}
	period := statsPeriodJSON{From: from.UTC(), To: to.UTC()}
	stats := map[string]*ruleStatsJSON{}
	q := engine.Query{From: from, To: to, Limit: 500}
	ctx := c.Request().Context()
	for {
		recs, next, err := h.decisions.Search(ctx, q)
		if err != nil {
			return statsPeriodJSON{}, nil, fmt.Errorf("scan decisions: %w", err)
		}
		for _, rec := range recs {
			tally(stats, rec, rule)
		}
		period.Decisions += len(recs)
		if next == "" {
			break
		}
		if period.Decisions >= MaxStatsDecisions {
			period.Truncated = true
			break
		}
		q.Cursor = next
	}
	for _, s := range stats {
		s.finish()
	}
	return period, stats, nil
}

func tally(stats map[string]*ruleStatsJSON, rec *engine.Record, only string) {
	fraud := rec.HasLabel(engine.LabelFraud) || rec.HasLabel(engine.LabelChargeback)
	legit := !fraud && (rec.HasLabel(engine.LabelLegit) || rec.HasLabel(engine.LabelChallengePassed))
	for i := range rec.Rules {
		r := &rec.Rules[i]
		if only != "" && r.ID != only {
			continue
		}
		s := stats[r.ID]
		if s == nil {
			s = &ruleStatsJSON{Rule: r.ID, Labelled: map[string]int{}}
			stats[r.ID] = s
		}
		s.Evaluated++
		if !r.Matched || r.Error != "" {
			continue
		}
		s.Hits.Total++
		if r.Mode == engine.ModeShadow {
			s.Hits.Shadow++
		} else {
			s.Hits.Active++
		}
		for _, l := range rec.Labels {
			s.Labelled[l.Label]++
		}
		switch {
		case fraud:
			s.Fraud++
		case legit:
			s.Legit++
		}
	}
}

func (s *ruleStatsJSON) finish() {
	ratio := func(a, b int) *float64 {
		if b == 0 {
			return nil
		}
		v := float64(a) / float64(b)
		return &v
	}
	s.FraudShare = ratio(s.Fraud, s.Hits.Total)
	s.LegitShare = ratio(s.Legit, s.Hits.Total)
	s.Precision = ratio(s.Fraud, s.Fraud+s.Legit)
	s.FalsePositives = s.Legit
}
