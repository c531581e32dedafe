package limits

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/riskengine/risk/features/kv"

	"github.com/riskengine/risk/engine"
)

// Bounds of an override.
const (
	MaxOverrideDuration = 366 * 24 * time.Hour
	MaxOverrideReason   = 512
)

// Override is an analyst's manual limit for one entity, in force until
// ExpiresAt. It replaces the computed single_max and daily_max (a zero
// amount keeps the computed one) and is not clamped by the policy: it is
// how an analyst vouches for a customer beyond the learned limits.
type Override struct {
	// Entity is "type:id", set by the limiter.
	Entity    string `json:"entity"`
	SingleMax int64  `json:"single_max,omitempty"`
	DailyMax  int64  `json:"daily_max,omitempty"`
	// Currency of the amounts; empty means the policy's base currency.
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EntityKey checks an entity type and id as the admin API names them and
// returns the entity as decisions show it ("account:acc_42"). The type must
// be the one limits are kept per; an account_merchant id is
// "<account id>:<merchant id>".
func (l *Limiter) EntityKey(entityType, id string) (string, error) {
	if entityType != l.kind {
		return "", engine.Invalid("entity_type", "invalid_entity_type", fmt.Sprintf("limits are kept per %s", l.kind))
	}
	if id == "" || len(id) > 2*engine.MaxStringLen+1 {
		return "", engine.Invalid("id", "invalid_id", "id must be 1 to 513 characters")
	}
	if l.kind == EntityAccountMerchant {
		a, m, ok := strings.Cut(id, ":")
		if !ok || a == "" || m == "" {
			return "", engine.Invalid("id", "invalid_id", "an account_merchant id is <account id>:<merchant id>")
		}
	}
	return l.kind + ":" + id, nil
}

// override returns the override of entity in force now.
func (l *Limiter) override(entity string) (Override, bool) {
	l.ovMu.RLock()
	ov, ok := l.overrides[entity]
	l.ovMu.RUnlock()
	if !ok || !l.opts.Now().Before(ov.ExpiresAt) {
		return Override{}, false
	}
	return ov, true
}

// applyOverride puts ov into out, converted to out's currency.
func (l *Limiter) applyOverride(out *engine.Limits, ov Override, pol *compiledPolicy) {
	conv := func(v int64) (int64, bool) {
		if v <= 0 {
			return 0, true
		}
		x, ok := pol.convert(float64(v), ov.Currency, out.Currency)
		return floorMinor(x), ok
	}
	single, ok1 := conv(ov.SingleMax)
	daily, ok2 := conv(ov.DailyMax)
	if !ok1 || !ok2 {
		out.Adjustments = append(out.Adjustments, fmt.Sprintf("override ignored: currency %s has no rate in the policy", ov.Currency))
		return
	}
	if single > 0 {
		out.SingleMax = single
	}
	if daily > 0 {
		out.DailyMax = daily
	}
	out.Override = &engine.LimitOverride{SingleMax: single, DailyMax: daily, Reason: ov.Reason, Author: ov.Author, ExpiresAt: ov.ExpiresAt}
	out.Adjustments = append(out.Adjustments, fmt.Sprintf("override by %s until %s: %s", ov.Author, ov.ExpiresAt.UTC().Format(time.RFC3339), ov.Reason))
}

// SetOverride validates o and puts it in force for an entity, replacing
// any override it had. ExpiresAt is required, in the future and at most
// MaxOverrideDuration away; Reason is required.
func (l *Limiter) SetOverride(ctx context.Context, entityType, id string, o Override) (Override, error) {
	entity, err := l.EntityKey(entityType, id)
	if err != nil {
		return Override{}, err
	}
	pol := l.policy.Load()
	now := l.opts.Now().UTC()
	if o.Currency == "" {
		o.Currency = pol.BaseCurrency
	}
	switch {
	case o.SingleMax < 0 || o.DailyMax < 0:
		return Override{}, engine.Invalid("single_max", "invalid_amount", "amounts must not be negative")
	case o.SingleMax == 0 && o.DailyMax == 0:
		return Override{}, engine.Invalid("single_max", "required", "set single_max, daily_max or both")
	case o.Reason == "":
		return Override{}, engine.Invalid("reason", "required", "reason is required")
	case len(o.Reason) > MaxOverrideReason:
		return Override{}, engine.Invalid("reason", "too_long", fmt.Sprintf("reason is longer than %d bytes", MaxOverrideReason))
	case o.ExpiresAt.IsZero():
		return Override{}, engine.Invalid("expires_at", "required", "expires_at is required")
	case !o.ExpiresAt.After(now):
		return Override{}, engine.Invalid("expires_at", "in_past", "expires_at must be in the future")
	case o.ExpiresAt.Sub(now) > MaxOverrideDuration:
		return Override{}, engine.Invalid("expires_at", "too_far", "an override lasts at most 366 days")
	}
	if _, ok := pol.rate(o.Currency); !ok {
		return Override{}, engine.Invalid("currency", "unknown_currency", fmt.Sprintf("currency %q has no exchange rate in the limits policy", o.Currency))
	}
	o.Entity, o.Author, o.CreatedAt, o.ExpiresAt = entity, engine.Actor(ctx), now, o.ExpiresAt.UTC()
	cause := fmt.Sprintf("override set until %s: %s", o.ExpiresAt.Format(time.RFC3339), o.Reason)
	prev, had := l.override(entity)
	if err := l.changeOverride(ctx, entity, &o, EventOverrideSet, cause, now); err != nil {
		return Override{}, err
	}
	var before any
	if had {
		before = prev
	}
	return o, l.audit(ctx, "limits.override.set", entity, before, o)
}

// DeleteOverride lifts an entity's override; an entity without one is an
// error wrapping engine.ErrNotFound.
func (l *Limiter) DeleteOverride(ctx context.Context, entityType, id string) error {
	entity, err := l.EntityKey(entityType, id)
	if err != nil {
		return err
	}
	prev, ok := l.override(entity)
	if !ok {
		return fmt.Errorf("override of %s: %w", entity, engine.ErrNotFound)
	}
	if err := l.changeOverride(ctx, entity, nil, EventOverrideDeleted, "override lifted", l.opts.Now().UTC()); err != nil {
		return err
	}
	return l.audit(ctx, "limits.override.delete", entity, prev, nil)
}

// changeOverride stores (o != nil) or removes an override and records the
// change in the entity's history, under the entity's lock.
func (l *Limiter) changeOverride(ctx context.Context, entity string, o *Override, kind, cause string, now time.Time) error {
	mu := l.lock(entity)
	mu.Lock()
	defer mu.Unlock()
	st, err := l.readState(ctx, entity)
	if err != nil {
		return err
	}
	pol := l.policy.Load()
	trust := pol.Trust.Initial
	if st.Learned {
		trust = st.Trust
	}
	author := "system"
	if o != nil {
		author = o.Author
	}
	st.History = append(st.History, TrustEvent{At: now, Kind: kind, TrustBefore: trust, TrustAfter: trust, Cause: cause, Author: author})
	key := []byte(prefixOverride + entity)
	err = l.db.Update(ctx, func(txn kv.Tx) error {
		if err := writeState(txn, entity, &st); err != nil {
			return err
		}
		if o == nil {
			return txn.Delete(key)
		}
		data, err := encodeOverride(*o)
		if err != nil {
			return err
		}
		return txn.SetTTL(key, data, o.ExpiresAt.Sub(now)+time.Hour)
	})
	if err != nil {
		return fmt.Errorf("store override of %s: %w", entity, err)
	}
	l.ovMu.Lock()
	if o == nil {
		delete(l.overrides, entity)
	} else {
		l.overrides[entity] = *o
	}
	l.ovMu.Unlock()
	return nil
}

func (l *Limiter) loadOverrides(ctx context.Context) error {
	m := map[string]Override{}
	err := l.db.View(ctx, func(txn kv.Tx) error {
		return txn.Scan([]byte(prefixOverride), kv.ScanOptions{}, func(_, v []byte) error {
			o, err := decodeOverride(v)
			if err != nil {
				return err
			}
			m[o.Entity] = o
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load limit overrides: %w", err)
	}
	l.ovMu.Lock()
	l.overrides = m
	l.ovMu.Unlock()
	return nil
}
