package engine

import "time"

// Limits are the dynamic spending limits of the paying entity at decision
// time, in the payment's currency and minor units. Rules read them as
// limits.single_max, limits.daily_max, limits.daily_remaining,
// limits.daily_spent and limits.trust.
type Limits struct {
	// Entity is the entity the limits belong to, as "type:id"
	// ("account:acc_42"). Empty when no limiter is configured or the
	// payment has no such entity.
	Entity         string
	Currency       string
	SingleMax      int64
	DailyMax       int64
	DailyRemaining int64
	DailySpent     int64
	// Trust is the entity's learned trust multiplier (1 is neutral).
	Trust float64
	// Policy and Segment name the policy rule the base values came from.
	Policy  string
	Segment string
	// Adjustments say, in words, why the limits differ from the segment's
	// base values (trust changes and their causes, clamps).
	Adjustments []string
	// Override is set when an analyst override is in force.
	Override *LimitOverride
}

// LimitOverride is an analyst's manual limit for one entity.
type LimitOverride struct {
	SingleMax int64
	DailyMax  int64
	Reason    string
	Author    string
	ExpiresAt time.Time
}
