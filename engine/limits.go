package engine

import "time"

// Limits are the dynamic spending limits of the paying entity at decision
// time, in the payment's currency and minor units. Rules read them as
// limits.single_max, limits.daily_max, limits.daily_remaining,
// limits.daily_spent and limits.trust.
//
// A limit is the policy segment's base value times the entity's trust,
// clamped to the policy's floor and ceiling, unless an analyst override is
// in force. Adjustments say in words why the values differ from the base.
type Limits struct {
	// Entity is the entity the limits belong to, as "type:id"
	// ("account:acc_42"). Empty when no limiter is configured or the
	// payment has no such entity.
	Entity string
	// Currency is the payment's currency, the unit of every amount here.
	Currency string
	// SingleMax is the largest single payment allowed without step-up.
	SingleMax int64
	// DailyMax is the most the entity may spend over a rolling 24 hours.
	DailyMax int64
	// DailyRemaining is DailyMax minus DailySpent, never below zero.
	DailyRemaining int64
	// DailySpent is what the entity spent over the 24 hours before this
	// payment (the payment itself excluded).
	DailySpent int64
	// Trust is the entity's learned trust multiplier (1 is neutral).
	Trust float64
	// Policy and Segment name the policy rule the base values came from.
	Policy  string
	Segment string
	// BaseSingleMax and BaseDailyMax are the segment's values before trust,
	// clamps and overrides, converted to Currency.
	BaseSingleMax int64
	BaseDailyMax  int64
	// BaseCurrency is the policy's currency and Rate the number of units of
	// Currency per unit of BaseCurrency used to convert (1 when they are
	// the same).
	BaseCurrency string
	Rate         float64
	// Adjustments say, in words, why the limits differ from the segment's
	// base values (trust changes and their causes, clamps).
	Adjustments []string
	// Override is set when an analyst override is in force.
	Override *LimitOverride
}

// LimitOverride is an analyst's manual limit for one entity. Amounts are in
// the currency of the Limits that carry it; a zero amount leaves the
// computed limit in place.
type LimitOverride struct {
	SingleMax int64
	DailyMax  int64
	Reason    string
	Author    string
	ExpiresAt time.Time
}
