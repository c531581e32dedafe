package features

import (
	"github.com/riskengine/risk/features/limits"
)

// The dynamic limits and trust moved to package features/limits. These
// aliases keep existing callers compiling while they move over; new code
// uses package limits directly. The daily spend a Limiter reads stays here:
// it is window state (Store.DailySpent, Store.LimiterSources).

// Limiter is limits.Limiter.
//
// Deprecated: use limits.Limiter.
type Limiter = limits.Limiter

// LimiterOptions is limits.Options.
//
// Deprecated: use limits.Options.
type LimiterOptions = limits.Options

// LimiterSources is limits.Sources.
//
// Deprecated: use limits.Sources.
type LimiterSources = limits.Sources

// SpendSource is limits.SpendSource.
//
// Deprecated: use limits.SpendSource.
type SpendSource = limits.SpendSource

// DecisionSearch is limits.DecisionSearch.
//
// Deprecated: use limits.DecisionSearch.
type DecisionSearch = limits.DecisionSearch

// Policy is limits.Policy.
//
// Deprecated: use limits.Policy.
type Policy = limits.Policy

// Segment is limits.Segment.
//
// Deprecated: use limits.Segment.
type Segment = limits.Segment

// TrustBounds is limits.TrustBounds.
//
// Deprecated: use limits.TrustBounds.
type TrustBounds = limits.TrustBounds

// Amounts is limits.Amounts.
//
// Deprecated: use limits.Amounts.
type Amounts = limits.Amounts

// Effect is limits.Effect.
//
// Deprecated: use limits.Effect.
type Effect = limits.Effect

// Override is limits.Override.
//
// Deprecated: use limits.Override.
type Override = limits.Override

// TrustEvent is limits.TrustEvent.
//
// Deprecated: use limits.TrustEvent.
type TrustEvent = limits.TrustEvent

// EntityLimits is limits.EntityLimits.
//
// Deprecated: use limits.EntityLimits.
type EntityLimits = limits.EntityLimits

// PaymentPredicate is limits.PaymentPredicate.
//
// Deprecated: use limits.PaymentPredicate.
type PaymentPredicate = limits.PaymentPredicate

// PredicateCompiler is limits.PredicateCompiler.
//
// Deprecated: use limits.PredicateCompiler.
type PredicateCompiler = limits.PredicateCompiler

// AuditFunc is limits.AuditFunc.
//
// Deprecated: use limits.AuditFunc.
type AuditFunc = limits.AuditFunc

// Entity kinds, block lists, event kinds and bounds, as in package limits.
//
// Deprecated: use the constants of package limits.
const (
	EntityAccount         = limits.EntityAccount
	EntityCard            = limits.EntityCard
	EntityAccountMerchant = limits.EntityAccountMerchant

	ListBlockedCards   = limits.ListBlockedCards
	ListBlockedDevices = limits.ListBlockedDevices

	EventLabel           = limits.EventLabel
	EventOverrideSet     = limits.EventOverrideSet
	EventOverrideDeleted = limits.EventOverrideDeleted

	DefaultTrustCacheEntries = limits.DefaultTrustCacheEntries
	MaxTrustHistory          = limits.MaxTrustHistory
	MaxOverrideDuration      = limits.MaxOverrideDuration
	MaxOverrideReason        = limits.MaxOverrideReason
	MaxSegments              = limits.MaxSegments
	MaxRates                 = limits.MaxRates
	MaxTrust                 = limits.MaxTrust
)

// NewLimiter returns a Limiter on s's LimiterSources; s must keep the
// daily spend (Options.LimitsEntity). It does no I/O; call Load before the
// first decision.
//
// Deprecated: use limits.New(s.LimiterSources()).
func NewLimiter(s *Store, opts LimiterOptions) (*Limiter, error) {
	src, err := s.LimiterSources()
	if err != nil {
		return nil, err
	}
	return limits.New(src, opts)
}

// NewLimiterOn is limits.New.
//
// Deprecated: use limits.New.
func NewLimiterOn(src LimiterSources, opts LimiterOptions) (*Limiter, error) {
	return limits.New(src, opts)
}

// DefaultPolicy is limits.DefaultPolicy.
//
// Deprecated: use limits.DefaultPolicy.
func DefaultPolicy() Policy { return limits.DefaultPolicy() }

// ValidLimitsEntity is limits.ValidEntity.
//
// Deprecated: use limits.ValidEntity.
func ValidLimitsEntity(kind string) bool { return limits.ValidEntity(kind) }

// MinorUnits is limits.MinorUnits.
//
// Deprecated: use limits.MinorUnits.
func MinorUnits(currency string) int { return limits.MinorUnits(currency) }
