package features

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
)

// storedRecord is the v1 encoding of an engine.Record: JSON with short keys.
// It is separate from the engine types so renaming a Go field never breaks
// stored history. Only read now; do not change it.
type storedRecord struct {
	ID             string                `json:"id"`
	TransactionID  string                `json:"tx"`
	Outcome        engine.Outcome        `json:"o"`
	Score          int                   `json:"s"`
	Reasons        []engine.Reason       `json:"r,omitempty"`
	Limits         *engine.Limits        `json:"l,omitempty"`
	RulesetVersion int64                 `json:"v"`
	Degraded       bool                  `json:"dg,omitempty"`
	DegradedCause  string                `json:"dc,omitempty"`
	EvaluatedAt    time.Time             `json:"at"`
	Payment        engine.Payment        `json:"p"`
	Request        json.RawMessage       `json:"req,omitempty"`
	RequestHash    string                `json:"h"`
	Features       []engine.FeatureValue `json:"f,omitempty"`
	Rules          []storedRule          `json:"ru,omitempty"`
	Thresholds     engine.Thresholds     `json:"th"`
	DeterminedBy   string                `json:"by"`
	Labels         []engine.Label        `json:"lb,omitempty"`
}

type storedRule struct {
	ID      string        `json:"id"`
	Name    string        `json:"n,omitempty"`
	Version int           `json:"v,omitempty"`
	Mode    engine.Mode   `json:"m"`
	Action  engine.Action `json:"a"`
	Score   int           `json:"s,omitempty"`
	Matched bool          `json:"x,omitempty"`
	Error   string        `json:"e,omitempty"`
	Reason  string        `json:"r,omitempty"`
	Message string        `json:"msg,omitempty"`
}

func decodeRecordV1(data []byte) (*engine.Record, error) {
	var s storedRecord
	if err := json.Unmarshal(data[8:], &s); err != nil {
		return nil, fmt.Errorf("decode decision: %w", err)
	}
	rec := &engine.Record{
		Decision: engine.Decision{
			ID: s.ID, TransactionID: s.TransactionID, Outcome: s.Outcome, Score: s.Score,
			Reasons: s.Reasons, RulesetVersion: s.RulesetVersion, Degraded: s.Degraded,
			DegradedCause: decodeCause(s.DegradedCause), EvaluatedAt: s.EvaluatedAt,
		},
		Seq: binary.BigEndian.Uint64(data[:8]), Payment: s.Payment, Request: s.Request,
		RequestHash: s.RequestHash, Features: s.Features, Thresholds: s.Thresholds,
		DeterminedBy: s.DeterminedBy, Labels: s.Labels,
	}
	if s.Limits != nil {
		rec.Limits = *s.Limits
	}
	rec.Rules = make([]engine.RuleResult, len(s.Rules))
	for i, r := range s.Rules {
		rec.Rules[i] = engine.RuleResult{
			RuleInfo: &engine.RuleInfo{
				ID: r.ID, Name: r.Name, Version: r.Version, Mode: r.Mode, Action: r.Action, Score: r.Score,
				Reason: r.Reason, Message: r.Message,
			},
			Matched: r.Matched, Error: r.Error,
		}
	}
	return rec, nil
}
