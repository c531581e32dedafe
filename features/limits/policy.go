package limits

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/riskengine/risk/engine"
)

// Policy is the analysts' limits policy: base limits per segment in a base
// currency, the bounds of the learned trust multiplier, floors and ceilings
// of the resulting limits, the exchange rates, and what each feedback label
// does. A limit is
//
//	clamp(segment base × clamp(trust, trust.floor, trust.ceiling), limits_floor, limits_ceiling)
//
// converted to the payment's currency, unless an override is in force.
// Amounts are integers in minor units of BaseCurrency.
type Policy struct {
	// Name is shown in decisions with the version ("default v3").
	Name string `json:"name"`
	// Version is assigned when the policy is stored: 0 is the built-in
	// default that was never stored.
	Version int64 `json:"version"`
	// BaseCurrency is the currency of every amount in the policy.
	BaseCurrency string `json:"base_currency"`
	// Rates holds, per currency, how many units of it one unit of
	// BaseCurrency buys. A payment in a currency not listed (other than
	// BaseCurrency) is refused with 400.
	Rates map[string]float64 `json:"rates"`
	// Segments are tried in order; the first whose When matches gives the
	// base limits. The last must have no When: it catches the rest.
	Segments []Segment `json:"segments"`
	// Trust bounds the per-entity trust multiplier.
	Trust TrustBounds `json:"trust"`
	// LimitsFloor and LimitsCeiling bound every computed limit; a zero
	// amount does not bound.
	LimitsFloor   Amounts `json:"limits_floor"`
	LimitsCeiling Amounts `json:"limits_ceiling"`
	// Effects says what each feedback label does; a label not listed does
	// nothing beyond being stored.
	Effects map[string]Effect `json:"effects"`
	// Author and UpdatedAt are set when the policy is stored.
	Author    string    `json:"author,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Segment is a class of entities with its own base limits.
type Segment struct {
	Name string `json:"name"`
	// When is an expression over the payment ("account.age_days < 7");
	// empty matches every payment.
	When      string `json:"when,omitempty"`
	SingleMax int64  `json:"single_max"`
	DailyMax  int64  `json:"daily_max"`
}

// TrustBounds bound the trust multiplier. A new entity starts at Initial.
type TrustBounds struct {
	Initial float64 `json:"initial"`
	Floor   float64 `json:"floor"`
	Ceiling float64 `json:"ceiling"`
}

// Amounts are a single-payment and a daily amount, in minor units.
type Amounts struct {
	SingleMax int64 `json:"single_max"`
	DailyMax  int64 `json:"daily_max"`
}

// Effect is what one feedback label does to the paying entity.
type Effect struct {
	// TrustStep is added to the entity's trust (negative lowers it); the
	// result is kept within the trust bounds.
	TrustStep float64 `json:"trust_step,omitempty"`
	// TrustToFloor drops trust to the trust floor.
	TrustToFloor bool `json:"trust_to_floor,omitempty"`
	// BlockCard and BlockDevice add the payment's card fingerprint and
	// device id to the blocked_cards and blocked_devices lists.
	BlockCard   bool `json:"block_card,omitempty"`
	BlockDevice bool `json:"block_device,omitempty"`
	// BlockFor is how long block-list entries last ("90d", "720h"); empty
	// never expires.
	BlockFor string `json:"block_for,omitempty"`
}

// Block lists feedback writes to.
const (
	ListBlockedCards   = "blocked_cards"
	ListBlockedDevices = "blocked_devices"
)

// Bounds of a policy.
const (
	MaxSegments   = 32
	MaxRates      = 200
	MaxTrust      = 100.0
	maxPolicyName = 64
)

// DefaultPolicy is the built-in policy in force until analysts store one.
// Its rates are illustrative round figures: set real ones.
func DefaultPolicy() Policy {
	return Policy{
		Name:         "default",
		BaseCurrency: "USD",
		Rates: map[string]float64{
			"EUR": 0.92, "GBP": 0.79, "CHF": 0.88, "CAD": 1.36, "AUD": 1.52, "JPY": 150, "CNY": 7.2,
			"SEK": 10.5, "NOK": 10.6, "DKK": 6.9, "PLN": 4, "INR": 83, "BRL": 5, "MXN": 17,
			"KWD": 0.31, "BHD": 0.377, "SGD": 1.35, "HKD": 7.8,
		},
		Segments: []Segment{
			{Name: "new_account", When: "account.age_days < 7", SingleMax: 20_000, DailyMax: 50_000},
			{Name: "established", SingleMax: 100_000, DailyMax: 300_000},
		},
		Trust:         TrustBounds{Initial: 1, Floor: 0.25, Ceiling: 3},
		LimitsFloor:   Amounts{SingleMax: 1_000, DailyMax: 5_000},
		LimitsCeiling: Amounts{SingleMax: 500_000, DailyMax: 1_500_000},
		Effects: map[string]Effect{
			engine.LabelChallengePassed: {TrustStep: 0.25},
			engine.LabelLegit:           {TrustStep: 0.25},
			engine.LabelChallengeFailed: {TrustStep: -0.25},
			engine.LabelFraud:           {TrustToFloor: true, BlockCard: true, BlockDevice: true, BlockFor: "90d"},
			engine.LabelChargeback:      {TrustToFloor: true, BlockCard: true, BlockFor: "180d"},
		},
	}
}

// PaymentPredicate is a compiled boolean expression over a payment, such as
// a policy segment's when. It must be safe for concurrent use.
type PaymentPredicate interface {
	MatchPayment(p *engine.Payment) (bool, error)
}

// PredicateCompiler compiles a segment expression into a PaymentPredicate
// (rules.CompilePaymentPredicate, wired by main).
type PredicateCompiler func(src string) (PaymentPredicate, error)

// compiledPolicy is a checked policy ready for the payment path. It is
// immutable and swapped whole.
type compiledPolicy struct {
	Policy
	label    string // "name vN"
	segments []compiledSegment
	blockFor map[string]time.Duration // per label
}

type compiledSegment struct {
	Segment
	when PaymentPredicate
}

var segmentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// compilePolicy validates p and compiles its segments. Errors are field
// errors naming the JSON path at fault, or a compile error of a when
// expression (which wraps engine.ErrUnprocessable).
func compilePolicy(p Policy, compile PredicateCompiler) (*compiledPolicy, error) {
	bad := func(field, msg string) error { return engine.Invalid(field, "invalid_policy", msg) }
	switch {
	case p.Name == "" || len(p.Name) > maxPolicyName:
		return nil, bad("name", fmt.Sprintf("name must be 1 to %d characters", maxPolicyName))
	case !engine.IsCurrency(p.BaseCurrency):
		return nil, bad("base_currency", fmt.Sprintf("base_currency %q is not an ISO 4217 code", p.BaseCurrency))
	case len(p.Rates) > MaxRates:
		return nil, bad("rates", fmt.Sprintf("at most %d rates", MaxRates))
	case len(p.Segments) == 0 || len(p.Segments) > MaxSegments:
		return nil, bad("segments", fmt.Sprintf("a policy has 1 to %d segments", MaxSegments))
	}
	for cur, r := range p.Rates {
		field := "rates." + cur
		switch {
		case !engine.IsCurrency(cur):
			return nil, bad(field, fmt.Sprintf("%q is not an ISO 4217 code", cur))
		case !(r > 0) || math.IsInf(r, 0):
			return nil, bad(field, "a rate must be a positive number")
		case cur == p.BaseCurrency && r != 1:
			return nil, bad(field, "the base currency's rate is 1")
		}
	}
	t := p.Trust
	if !(t.Floor > 0) || !(t.Floor <= t.Initial) || !(t.Initial <= t.Ceiling) || !(t.Ceiling <= MaxTrust) {
		return nil, bad("trust", fmt.Sprintf("trust needs 0 < floor <= initial <= ceiling <= %g", MaxTrust))
	}
	for _, a := range []struct {
		field string
		v     int64
	}{
		{"limits_floor.single_max", p.LimitsFloor.SingleMax}, {"limits_floor.daily_max", p.LimitsFloor.DailyMax},
		{"limits_ceiling.single_max", p.LimitsCeiling.SingleMax}, {"limits_ceiling.daily_max", p.LimitsCeiling.DailyMax},
	} {
		if a.v < 0 {
			return nil, bad(a.field, "amounts must not be negative")
		}
	}
	if c := p.LimitsCeiling.SingleMax; c > 0 && p.LimitsFloor.SingleMax > c {
		return nil, bad("limits_floor.single_max", "the floor is above the ceiling")
	}
	if c := p.LimitsCeiling.DailyMax; c > 0 && p.LimitsFloor.DailyMax > c {
		return nil, bad("limits_floor.daily_max", "the floor is above the ceiling")
	}
	cp := &compiledPolicy{Policy: p, label: p.Name + " v" + strconv.FormatInt(p.Version, 10), blockFor: map[string]time.Duration{}}
	seen := map[string]bool{}
	for i, s := range p.Segments {
		field := fmt.Sprintf("segments[%d]", i)
		switch {
		case !segmentName.MatchString(s.Name):
			return nil, bad(field+".name", "segment names are 1 to 63 lowercase letters, digits or '_', starting with a letter")
		case seen[s.Name]:
			return nil, bad(field+".name", fmt.Sprintf("duplicate segment %q", s.Name))
		case s.SingleMax <= 0 || s.DailyMax <= 0:
			return nil, bad(field, "single_max and daily_max must be positive")
		case i == len(p.Segments)-1 && s.When != "":
			return nil, bad(field+".when", "the last segment has no when: it catches every payment the others do not")
		}
		seen[s.Name] = true
		cs := compiledSegment{Segment: s}
		if s.When != "" {
			if compile == nil {
				return nil, bad(field+".when", "segment expressions are not available")
			}
			w, err := compile(s.When)
			if err != nil {
				return nil, fmt.Errorf("%s.when: %w", field, err)
			}
			cs.when = w
		}
		cp.segments = append(cp.segments, cs)
	}
	for label, e := range p.Effects {
		field := "effects." + label
		if !engine.ValidLabel(label) {
			return nil, bad(field, fmt.Sprintf("unknown label %q", label))
		}
		if math.IsNaN(e.TrustStep) || math.Abs(e.TrustStep) > MaxTrust {
			return nil, bad(field+".trust_step", fmt.Sprintf("trust_step must be between -%g and %g", MaxTrust, MaxTrust))
		}
		if e.BlockFor != "" {
			d, err := parseBlockFor(e.BlockFor)
			if err != nil {
				return nil, bad(field+".block_for", err.Error())
			}
			cp.blockFor[label] = d
		}
	}
	return cp, nil
}

// rate returns how many units of currency one unit of the base currency
// buys; ok is false for a currency the policy cannot price.
func (cp *compiledPolicy) rate(currency string) (float64, bool) {
	if currency == cp.BaseCurrency {
		return 1, true
	}
	r, ok := cp.Rates[currency]
	return r, ok
}

// convert converts amount in minor units of from into minor units of to.
func (cp *compiledPolicy) convert(amount float64, from, to string) (float64, bool) {
	rf, ok1 := cp.rate(from)
	rt, ok2 := cp.rate(to)
	if !ok1 || !ok2 {
		return 0, false
	}
	return ConvertMinor(amount, from, to, rt/rf), true
}

// segment returns the first segment matching p. A segment whose expression
// fails is skipped, and the failure is returned as a note for the
// explanation.
func (cp *compiledPolicy) segment(p *engine.Payment) (*compiledSegment, string) {
	var note string
	for i := range cp.segments {
		s := &cp.segments[i]
		if s.when == nil {
			return s, note
		}
		ok, err := s.when.MatchPayment(p)
		if err != nil {
			if note == "" {
				note = fmt.Sprintf("segment %s skipped: %v", s.Name, err)
			}
			continue
		}
		if ok {
			return s, note
		}
	}
	return &cp.segments[len(cp.segments)-1], note // unreachable: the last segment has no when
}

// clampTrust keeps t within the policy's trust bounds.
func (cp *compiledPolicy) clampTrust(t float64) float64 {
	return math.Min(math.Max(t, cp.Trust.Floor), cp.Trust.Ceiling)
}

// clampAmount keeps v within [floor, ceiling]; a zero bound does not bound.
// It reports which bound applied: -1 floor, 1 ceiling, 0 none.
func clampAmount(v float64, floor, ceiling int64) (float64, int) {
	if ceiling > 0 && v > float64(ceiling) {
		return float64(ceiling), 1
	}
	if floor > 0 && v < float64(floor) {
		return float64(floor), -1
	}
	return v, 0
}

// parseBlockFor parses how long a block-list entry lasts, as
// features.ParseWindow reads a window (engine.ParseLength, with the same
// bounds and messages): from a minute to 365 days.
func parseBlockFor(s string) (time.Duration, error) {
	d, err := engine.ParseLength(s)
	if err != nil {
		return 0, err
	}
	if d < time.Minute || d > 365*24*time.Hour {
		return 0, fmt.Errorf("window %q: must be between 1m and 365d", s)
	}
	return d, nil
}
