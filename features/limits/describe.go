package limits

import (
	"context"
	"slices"
	"strings"

	"github.com/riskengine/risk/engine"
)

// EntityLimits is what the limiter knows of one entity, for analysts.
type EntityLimits struct {
	// Entity is "type:id".
	Entity string
	// Limits are the entity's limits now, for a payment like its latest
	// one, in the currency asked for.
	Limits engine.Limits
	// Trust is the entity's trust multiplier within the policy's bounds.
	Trust float64
	// Override is the override in force, if any.
	Override *Override
	// History lists the trust and override changes, newest first.
	History []TrustEvent
	// Basis is the decision whose payment the segment was chosen on; empty
	// when the entity has none and the segment was chosen on an empty
	// payment of the entity.
	Basis string
}

// Describe returns an entity's current limits in currency (empty means the
// policy's base currency), trust, override and history.
func (l *Limiter) Describe(ctx context.Context, entityType, id, currency string) (EntityLimits, error) {
	entity, err := l.EntityKey(entityType, id)
	if err != nil {
		return EntityLimits{}, err
	}
	pol := l.policy.Load()
	if currency == "" {
		currency = pol.BaseCurrency
	}
	p, basis, err := l.latestPayment(ctx, id)
	if err != nil {
		return EntityLimits{}, err
	}
	p.OccurredAt = l.opts.Now().UTC()
	p.Currency = currency
	p.Amount = 0
	lim, err := l.Limits(ctx, &p)
	if err != nil {
		return EntityLimits{}, err
	}
	st, err := l.readState(ctx, entity)
	if err != nil {
		return EntityLimits{}, err
	}
	out := EntityLimits{Entity: entity, Limits: lim, Trust: lim.Trust, History: st.History, Basis: basis}
	slices.Reverse(out.History)
	if ov, ok := l.override(entity); ok {
		out.Override = &ov
	}
	return out, nil
}

// latestPayment returns the payment of the entity's newest decision, or an
// empty payment of the entity when it has none.
func (l *Limiter) latestPayment(ctx context.Context, id string) (engine.Payment, string, error) {
	var p engine.Payment
	q := engine.Query{Limit: 1}
	switch l.kind {
	case EntityAccount:
		p.Account.ID, q.AccountID = id, id
	case EntityCard:
		p.Card.Fingerprint, q.CardFingerprint = id, id
	case EntityAccountMerchant:
		p.Account.ID, p.Merchant.ID, _ = strings.Cut(id, ":")
		q.AccountID, q.Limit = p.Account.ID, 500
	}
	recs, _, err := l.src.Decisions.Search(ctx, q)
	if err != nil {
		return engine.Payment{}, "", err
	}
	for _, r := range recs {
		if l.kind != EntityAccountMerchant || r.Payment.Merchant.ID == p.Merchant.ID {
			return r.Payment, r.ID, nil
		}
	}
	return p, "", nil
}
