package review

import (
	"context"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
)

// Bounds of related decisions. Card and account are read through their
// search indexes; device and IP have none, so they are found by a scan of
// the most recent decisions of the period, newest first, that stops after
// maxScanned decisions (Related reports Truncated then).
const (
	DefaultRelatedDays = 7
	MaxRelatedDays     = 90
	maxRelated         = 50
	maxScanned         = 5000
)

// Related is the decisions sharing one entity with a reviewed decision.
type Related struct {
	Type      string            `json:"type"`
	Value     string            `json:"value"`
	Decisions []RelatedDecision `json:"decisions"`
	// Truncated is true when there may be more than these: maxRelated were
	// found, or the scan for a device or IP stopped at its bound.
	Truncated bool `json:"truncated"`
}

// RelatedDecision is one related decision, with its outcome and labels.
type RelatedDecision struct {
	DecisionID    string         `json:"decision_id"`
	TransactionID string         `json:"transaction_id"`
	Decision      engine.Outcome `json:"decision"`
	Amount        int64          `json:"amount"`
	Currency      string         `json:"currency"`
	EvaluatedAt   time.Time      `json:"evaluated_at"`
	Labels        []string       `json:"labels"`
}

// RelatedTo returns, for each of the card, account, device and IP of rec,
// the other decisions with the same value over the days before now.
func RelatedTo(ctx context.Context, d Decisions, rec *engine.Record, now time.Time, days int) ([]Related, error) {
	from := now.Add(-time.Duration(days) * 24 * time.Hour)
	p := &rec.Payment
	var out []Related
	if v := p.Card.Fingerprint; v != "" {
		r, err := relatedIndexed(ctx, d, rec.ID, engine.Query{CardFingerprint: v, From: from}, "card", v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if v := p.Account.ID; v != "" {
		r, err := relatedIndexed(ctx, d, rec.ID, engine.Query{AccountID: v, From: from}, "account", v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if p.Device.ID == "" && p.Device.IP == "" {
		return out, nil
	}
	dev := Related{Type: "device", Value: p.Device.ID, Decisions: []RelatedDecision{}}
	ip := Related{Type: "ip", Value: p.Device.IP, Decisions: []RelatedDecision{}}
	q := engine.Query{From: from, Limit: 500}
	scanned := 0
	for scanned < maxScanned {
		recs, next, err := d.Search(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("related decisions: %w", err)
		}
		for _, r := range recs {
			scanned++
			if r.ID == rec.ID {
				continue
			}
			if dev.Value != "" && r.Payment.Device.ID == dev.Value {
				dev.add(r)
			}
			if ip.Value != "" && r.Payment.Device.IP == ip.Value {
				ip.add(r)
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
		if scanned >= maxScanned {
			dev.Truncated, ip.Truncated = true, true
		}
	}
	for _, r := range []Related{dev, ip} {
		if r.Value != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

func relatedIndexed(ctx context.Context, d Decisions, self string, q engine.Query, typ, value string) (Related, error) {
	q.Limit = maxRelated + 1
	recs, _, err := d.Search(ctx, q)
	if err != nil {
		return Related{}, fmt.Errorf("related decisions: %w", err)
	}
	r := Related{Type: typ, Value: value, Decisions: []RelatedDecision{}}
	for _, x := range recs {
		if x.ID != self {
			r.add(x)
		}
	}
	return r, nil
}

func (r *Related) add(rec *engine.Record) {
	if len(r.Decisions) == maxRelated {
		r.Truncated = true
		return
	}
	labels := make([]string, len(rec.Labels))
	for i, l := range rec.Labels {
		labels[i] = l.Label
	}
	r.Decisions = append(r.Decisions, RelatedDecision{
		DecisionID: rec.ID, TransactionID: rec.TransactionID, Decision: rec.Outcome, Amount: rec.Payment.Amount,
		Currency: rec.Payment.Currency, EvaluatedAt: rec.EvaluatedAt.UTC(), Labels: labels,
	})
}
