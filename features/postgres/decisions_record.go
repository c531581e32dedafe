package postgres

// The stored form of a decision record in the record and labels columns:
// JSON documents of their own, separate from the engine types and from any
// API wire type, so renaming a Go field never breaks stored history. A
// record document carries its version in "v".

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riskengine/risk/engine"
)

// recordVersion is the version of the record documents written now.
const recordVersion = 1

type storedRecord struct {
	V              int              `json:"v"`
	ID             string           `json:"id"`
	TransactionID  string           `json:"transaction_id"`
	Outcome        string           `json:"outcome"`
	Score          int              `json:"score"`
	Reasons        []storedReason   `json:"reasons,omitempty"`
	Limits         storedLimits     `json:"limits"`
	RulesetVersion int64            `json:"ruleset_version"`
	Degraded       bool             `json:"degraded,omitempty"`
	DegradedCause  string           `json:"degraded_cause,omitempty"`
	EvaluatedAt    time.Time        `json:"evaluated_at"`
	Payment        storedPayment    `json:"payment"`
	Request        []byte           `json:"request,omitempty"` // base64: jsonb would reformat raw JSON
	RequestHash    string           `json:"request_hash,omitempty"`
	Features       []storedFeature  `json:"features,omitempty"`
	Rules          []storedRule     `json:"rules,omitempty"`
	Thresholds     storedThresholds `json:"thresholds"`
	DeterminedBy   string           `json:"determined_by,omitempty"`
}

type storedReason struct {
	Rule    string `json:"rule,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type storedLimits struct {
	Entity         string          `json:"entity,omitempty"`
	Currency       string          `json:"currency,omitempty"`
	SingleMax      int64           `json:"single_max,omitempty"`
	DailyMax       int64           `json:"daily_max,omitempty"`
	DailyRemaining int64           `json:"daily_remaining,omitempty"`
	DailySpent     int64           `json:"daily_spent,omitempty"`
	Trust          number          `json:"trust,omitempty"`
	Policy         string          `json:"policy,omitempty"`
	Segment        string          `json:"segment,omitempty"`
	BaseSingleMax  int64           `json:"base_single_max,omitempty"`
	BaseDailyMax   int64           `json:"base_daily_max,omitempty"`
	BaseCurrency   string          `json:"base_currency,omitempty"`
	Rate           number          `json:"rate,omitempty"`
	Adjustments    []string        `json:"adjustments,omitempty"`
	Override       *storedOverride `json:"override,omitempty"`
}

type storedOverride struct {
	SingleMax int64     `json:"single_max,omitempty"`
	DailyMax  int64     `json:"daily_max,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Author    string    `json:"author,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

type storedPayment struct {
	TransactionID string         `json:"transaction_id"`
	OccurredAt    time.Time      `json:"occurred_at"`
	Amount        int64          `json:"amount"`
	Currency      string         `json:"currency"`
	Account       storedAccount  `json:"account"`
	Card          storedCard     `json:"card"`
	Device        storedDevice   `json:"device"`
	Merchant      storedMerchant `json:"merchant"`
	Attributes    map[string]any `json:"attributes,omitempty"`
}

type storedAccount struct {
	ID        string    `json:"id,omitempty"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Country   string    `json:"country,omitempty"`
}

type storedCard struct {
	Fingerprint string `json:"fingerprint,omitempty"`
	BIN         string `json:"bin,omitempty"`
	Country     string `json:"country,omitempty"`
}

type storedDevice struct {
	ID        string `json:"id,omitempty"`
	IP        string `json:"ip,omitempty"`
	IPCountry string `json:"ip_country,omitempty"`
}

type storedMerchant struct {
	ID      string `json:"id,omitempty"`
	MCC     string `json:"mcc,omitempty"`
	Country string `json:"country,omitempty"`
}

type storedFeature struct {
	Name  string `json:"name"`
	Value number `json:"value"`
	Ready bool   `json:"ready"`
}

type storedRule struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version,omitempty"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	Score   int    `json:"score,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

type storedThresholds struct {
	Challenge int `json:"challenge"`
	Deny      int `json:"deny"`
}

type storedLabel struct {
	Label     string    `json:"label"`
	Note      string    `json:"note,omitempty"`
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// number is a float64 that survives JSON when it is not finite: NaN and
// the infinities are written as the strings "NaN", "+Inf" and "-Inf".
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendQuote(nil, strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*n = number(f)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*n = number(f)
	return nil
}

// encodeRecord returns the record document of rec (without labels).
func encodeRecord(rec *engine.Record) ([]byte, error) {
	p := &rec.Payment
	l := &rec.Limits
	s := storedRecord{
		V: recordVersion, ID: rec.ID, TransactionID: rec.TransactionID, Outcome: string(rec.Outcome),
		Score: rec.Score, RulesetVersion: rec.RulesetVersion, Degraded: rec.Degraded,
		DegradedCause: string(rec.DegradedCause), EvaluatedAt: rec.EvaluatedAt,
		Limits: storedLimits{
			Entity: l.Entity, Currency: l.Currency, SingleMax: l.SingleMax, DailyMax: l.DailyMax,
			DailyRemaining: l.DailyRemaining, DailySpent: l.DailySpent, Trust: number(l.Trust),
			Policy: l.Policy, Segment: l.Segment, BaseSingleMax: l.BaseSingleMax, BaseDailyMax: l.BaseDailyMax,
			BaseCurrency: l.BaseCurrency, Rate: number(l.Rate), Adjustments: l.Adjustments,
		},
		Payment: storedPayment{
			TransactionID: p.TransactionID, OccurredAt: p.OccurredAt, Amount: p.Amount, Currency: p.Currency,
			Account:    storedAccount{ID: p.Account.ID, Email: p.Account.Email, CreatedAt: p.Account.CreatedAt, Country: p.Account.Country},
			Card:       storedCard{Fingerprint: p.Card.Fingerprint, BIN: p.Card.BIN, Country: p.Card.Country},
			Device:     storedDevice{ID: p.Device.ID, IP: p.Device.IP, IPCountry: p.Device.IPCountry},
			Merchant:   storedMerchant{ID: p.Merchant.ID, MCC: p.Merchant.MCC, Country: p.Merchant.Country},
			Attributes: p.Attributes,
		},
		Request: rec.Request, RequestHash: rec.RequestHash,
		Thresholds:   storedThresholds{Challenge: rec.Thresholds.Challenge, Deny: rec.Thresholds.Deny},
		DeterminedBy: rec.DeterminedBy,
	}
	if o := l.Override; o != nil {
		s.Limits.Override = &storedOverride{SingleMax: o.SingleMax, DailyMax: o.DailyMax, Reason: o.Reason, Author: o.Author, ExpiresAt: o.ExpiresAt}
	}
	for _, r := range rec.Reasons {
		s.Reasons = append(s.Reasons, storedReason(r))
	}
	for _, f := range rec.Features {
		s.Features = append(s.Features, storedFeature{Name: f.Name, Value: number(f.Value), Ready: f.Ready})
	}
	for i := range rec.Rules {
		r := &rec.Rules[i]
		sr := storedRule{Matched: r.Matched, Error: r.Error}
		if info := r.RuleInfo; info != nil {
			sr.ID, sr.Name, sr.Version, sr.Mode, sr.Action = info.ID, info.Name, info.Version, string(info.Mode), string(info.Action)
			sr.Score, sr.Reason, sr.Message = info.Score, info.Reason, info.Message
		}
		s.Rules = append(s.Rules, sr)
	}
	b, err := json.Marshal(&s)
	if err != nil {
		return nil, fmt.Errorf("encode decision %s: %w", rec.ID, err)
	}
	return b, nil
}

// decodeRecord reads a record document and the labels column back into a
// record; seq comes from its column.
func decodeRecord(seq int64, doc, labels []byte) (*engine.Record, error) {
	// One pass: the version is checked after decoding (a document of
	// another version that happens to decode is still refused). A first
	// pass for the version alone cost a third of the decoding
	// (BenchmarkDecodeRecord).
	var s storedRecord
	err := json.Unmarshal(doc, &s)
	if s.V != recordVersion {
		var v struct {
			V int `json:"v"`
		}
		if json.Unmarshal(doc, &v) == nil && v.V != recordVersion {
			return nil, fmt.Errorf("decode decision: unknown record version %d", v.V)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decode decision: %w", err)
	}
	if s.V != recordVersion {
		return nil, fmt.Errorf("decode decision: unknown record version %d", s.V)
	}
	p := &s.Payment
	l := &s.Limits
	rec := &engine.Record{
		Decision: engine.Decision{
			ID: s.ID, TransactionID: s.TransactionID, Outcome: engine.Outcome(s.Outcome), Score: s.Score,
			RulesetVersion: s.RulesetVersion, Degraded: s.Degraded, DegradedCause: engine.Cause(s.DegradedCause),
			EvaluatedAt: s.EvaluatedAt,
			Limits: engine.Limits{
				Entity: l.Entity, Currency: l.Currency, SingleMax: l.SingleMax, DailyMax: l.DailyMax,
				DailyRemaining: l.DailyRemaining, DailySpent: l.DailySpent, Trust: float64(l.Trust),
				Policy: l.Policy, Segment: l.Segment, BaseSingleMax: l.BaseSingleMax, BaseDailyMax: l.BaseDailyMax,
				BaseCurrency: l.BaseCurrency, Rate: float64(l.Rate), Adjustments: l.Adjustments,
			},
		},
		Seq: uint64(seq),
		Payment: engine.Payment{
			TransactionID: p.TransactionID, OccurredAt: p.OccurredAt, Amount: p.Amount, Currency: p.Currency,
			Account:    engine.Account{ID: p.Account.ID, Email: p.Account.Email, CreatedAt: p.Account.CreatedAt, Country: p.Account.Country},
			Card:       engine.Card{Fingerprint: p.Card.Fingerprint, BIN: p.Card.BIN, Country: p.Card.Country},
			Device:     engine.Device{ID: p.Device.ID, IP: p.Device.IP, IPCountry: p.Device.IPCountry},
			Merchant:   engine.Merchant{ID: p.Merchant.ID, MCC: p.Merchant.MCC, Country: p.Merchant.Country},
			Attributes: p.Attributes,
		},
		Request: s.Request, RequestHash: s.RequestHash,
		Thresholds:   engine.Thresholds{Challenge: s.Thresholds.Challenge, Deny: s.Thresholds.Deny},
		DeterminedBy: s.DeterminedBy,
	}
	if o := l.Override; o != nil {
		rec.Limits.Override = &engine.LimitOverride{SingleMax: o.SingleMax, DailyMax: o.DailyMax, Reason: o.Reason, Author: o.Author, ExpiresAt: o.ExpiresAt}
	}
	for _, r := range s.Reasons {
		rec.Reasons = append(rec.Reasons, engine.Reason(r))
	}
	for _, f := range s.Features {
		rec.Features = append(rec.Features, engine.FeatureValue{Name: f.Name, Value: float64(f.Value), Ready: f.Ready})
	}
	if len(s.Rules) > 0 {
		rec.Rules = make([]engine.RuleResult, len(s.Rules))
		infos := make([]engine.RuleInfo, len(s.Rules)) // one allocation for every rule
		for i, r := range s.Rules {
			infos[i] = engine.RuleInfo{ID: r.ID, Name: r.Name, Version: r.Version, Mode: engine.Mode(r.Mode),
				Action: engine.Action(r.Action), Score: r.Score, Reason: r.Reason, Message: r.Message}
			rec.Rules[i] = engine.RuleResult{RuleInfo: &infos[i], Matched: r.Matched, Error: r.Error}
		}
	}
	if rec.Labels, err = decodeLabels(labels); err != nil {
		return nil, fmt.Errorf("decode labels of %s: %w", rec.ID, err)
	}
	return rec, nil
}

func encodeLabels(ls []engine.Label) ([]byte, error) {
	out := make([]storedLabel, 0, len(ls))
	for _, l := range ls {
		out = append(out, storedLabel(l))
	}
	return json.Marshal(out)
}

func decodeLabels(b []byte) ([]engine.Label, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var ls []storedLabel
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, err
	}
	var out []engine.Label
	for _, l := range ls {
		out = append(out, engine.Label(l))
	}
	return out, nil
}

// checkStorable refuses a record PostgreSQL would refuse, before it joins
// a batch whose other commits it would fail with it: text columns must be
// valid UTF-8 without NUL, and jsonb cannot hold the escape \u0000 (the
// request body is base64, so only parsed values can carry one).
func checkStorable(rec *engine.Record, doc []byte) error {
	p := &rec.Payment
	for _, s := range [...]string{rec.ID, rec.TransactionID, p.Account.ID, p.Card.Fingerprint, p.Merchant.ID,
		string(rec.Outcome), string(rec.DegradedCause), rec.RequestHash} {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("decision %s: %q is not storable text (invalid UTF-8 or NUL)", rec.ID, s)
		}
	}
	for i := 0; ; {
		j := bytes.Index(doc[i:], []byte(`\u0000`))
		if j < 0 {
			return nil
		}
		j += i
		// An escape only when preceded by an even number of backslashes
		// (the one of \u0000 excluded): `\\u0000` is text.
		n := 0
		for k := j - 1; k >= 0 && doc[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return fmt.Errorf("decision %s: a value holds a NUL character, which PostgreSQL cannot store", rec.ID)
		}
		i = j + 1
	}
}
