package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// DryRunConfig configures POST /admin/rules/dry-run. Decisions, Features,
// Draft and Env are required.
type DryRunConfig struct {
	// Decisions reads past decisions (features.Store).
	Decisions interface {
		Get(ctx context.Context, decisionID string) (*engine.Record, error)
	}
	// Features reads the current feature values of a pasted payment,
	// without recording it (features.Store).
	Features engine.FeatureSource
	// Limiter computes the limits of a pasted payment; nil leaves them zero.
	Limiter engine.Limiter
	// Draft returns the draft rule set (API.Draft).
	Draft func(ctx context.Context) (rules.Spec, error)
	// Env is the environment rules compile against now.
	Env func() rules.Env
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds the body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// DryRun runs a rule or the whole draft against a past decision or a
// pasted payment. It stores nothing and counts nothing: no decision, no
// feature window, no rule statistic, no audit entry. It is safe for
// concurrent use.
type DryRun struct{ cfg DryRunConfig }

// NewDryRun returns a DryRun for cfg. It does no I/O.
func NewDryRun(cfg DryRunConfig) *DryRun {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &DryRun{cfg: cfg}
}

// RegisterDryRun adds POST /rules/dry-run to g for analysts (it changes
// nothing, but it runs candidate rules, which is the analysts' work).
func RegisterDryRun(g *echo.Group, require Require, d *DryRun) {
	g.POST("/rules/dry-run", d.handle, require(engine.RoleAnalyst))
}

// dryRunJSON is the body of POST /admin/rules/dry-run: exactly one of
// decision_id and payment; rule is optional (absent: the whole draft).
type dryRunJSON struct {
	DecisionID string          `json:"decision_id"`
	Payment    json.RawMessage `json:"payment"`
	Rule       *rules.Rule     `json:"rule"`
}

// dryRunResultJSON is the answer.
type dryRunResultJSON struct {
	Source       string             `json:"source"` // "decision" or "payment"
	DecisionID   string             `json:"decision_id,omitempty"`
	Against      string             `json:"against"` // "rule" or "draft"
	Outcome      engine.Outcome     `json:"decision"`
	Score        int                `json:"score"`
	DeterminedBy string             `json:"determined_by"`
	Reasons      []dryRunReasonJSON `json:"reasons"`
	Rules        []dryRunRuleJSON   `json:"rules"`
	Features     map[string]float64 `json:"features"`
	// Recorded is what the past decision answered then (source decision).
	Recorded *dryRunRecordedJSON `json:"recorded,omitempty"`
}

type dryRunReasonJSON struct {
	Rule    string `json:"rule"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type dryRunRuleJSON struct {
	ID      string        `json:"id"`
	Mode    engine.Mode   `json:"mode"`
	Action  engine.Action `json:"action"`
	Score   int           `json:"score,omitempty"`
	Matched bool          `json:"matched"`
	Error   string        `json:"error,omitempty"`
}

type dryRunRecordedJSON struct {
	Outcome        engine.Outcome `json:"decision"`
	Score          int            `json:"score"`
	RulesetVersion int64          `json:"ruleset_version"`
}

func (d *DryRun) handle(c echo.Context) error {
	body, err := readBody(c, d.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	var in dryRunJSON
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	hasPayment := len(bytes.TrimSpace(in.Payment)) > 0 && !bytes.Equal(bytes.TrimSpace(in.Payment), []byte("null"))
	if (in.DecisionID == "") == !hasPayment {
		return engine.Invalid("decision_id", "required", "send exactly one of decision_id and payment")
	}
	ctx := c.Request().Context()
	out, err := d.run(ctx, in, hasPayment)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// run evaluates the candidate against the chosen input.
func (d *DryRun) run(ctx context.Context, in dryRunJSON, hasPayment bool) (*dryRunResultJSON, error) {
	spec, err := d.cfg.Draft(ctx)
	if err != nil {
		return nil, err
	}
	out := &dryRunResultJSON{Against: "draft"}
	if in.Rule != nil {
		spec.Rules = []rules.Rule{*in.Rule}
		out.Against = "rule"
	}
	set, err := rules.Compile(spec, d.cfg.Env(), 0)
	if err != nil {
		return nil, err
	}
	var input engine.Input
	if hasPayment {
		p, err := engine.DecodePayment(in.Payment)
		if err != nil {
			return nil, prefixField("payment", err)
		}
		if p.OccurredAt.IsZero() {
			p.OccurredAt = d.cfg.Now().UTC()
		}
		if err := p.Validate(d.cfg.Now()); err != nil {
			return nil, prefixField("payment", err)
		}
		fv, err := d.cfg.Features.Features(ctx, &p, nil)
		if err != nil {
			return nil, fmt.Errorf("read features: %w", err)
		}
		var lim engine.Limits
		if d.cfg.Limiter != nil {
			if lim, err = d.cfg.Limiter.Limits(ctx, &p); err != nil {
				return nil, fmt.Errorf("read limits: %w", err)
			}
		}
		input = engine.Input{Payment: &p, Features: fv, Limits: &lim, Now: d.cfg.Now().UTC()}
		out.Source = "payment"
	} else {
		rec, err := d.cfg.Decisions.Get(ctx, in.DecisionID)
		if err != nil {
			return nil, err
		}
		input = engine.Input{Payment: &rec.Payment, Features: rec.Features, Limits: &rec.Limits, Now: rec.EvaluatedAt}
		out.Source, out.DecisionID = "decision", rec.ID
		out.Recorded = &dryRunRecordedJSON{Outcome: rec.Outcome, Score: rec.Score, RulesetVersion: rec.RulesetVersion}
	}
	results := set.Evaluate(ctx, &input, nil)
	var reasons []engine.Reason
	out.Outcome, out.Score, reasons, out.DeterminedBy = engine.Combine(results, set.Thresholds())
	out.Reasons = make([]dryRunReasonJSON, len(reasons))
	for i, r := range reasons {
		out.Reasons[i] = dryRunReasonJSON{Rule: r.Rule, Code: r.Code, Message: r.Message}
	}
	out.Rules = make([]dryRunRuleJSON, len(results))
	for i, r := range results {
		out.Rules[i] = dryRunRuleJSON{ID: r.ID, Mode: r.Mode, Action: r.Action, Score: r.Score, Matched: r.Matched, Error: r.Error}
	}
	out.Features = make(map[string]float64, len(input.Features))
	for _, f := range input.Features {
		out.Features[f.Name] = f.Value
	}
	return out, nil
}

// prefixField names a payment field error as a field of the payment
// object ("payment.amount").
func prefixField(prefix string, err error) error {
	var fe *engine.FieldError
	if errors.As(err, &fe) {
		cp := *fe
		if cp.Field == "" {
			cp.Field = prefix
		} else {
			cp.Field = prefix + "." + cp.Field
		}
		return &cp
	}
	return err
}
