// Package limits computes the dynamic limits of a paying entity (an
// account, a card, or an account at a merchant) from an analysts' policy,
// overrides and a trust multiplier learned from feedback labels, and keeps
// that state in a kv.DB. The daily spend it reads comes from a SpendSource
// (the feature store's window state); it never imports package features,
// which imports it.
package limits

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/lists"
)

// DefaultTrustCacheEntries bounds the trust states a Limiter keeps in
// memory by default.
const DefaultTrustCacheEntries = 100_000

// Keys of the limiter in its kv.DB (stored bytes are unchanged by the move
// out of package features).
const (
	keyPolicy      = keyspace.LimitsPolicy  // the live policy (storedPolicy, JSON)
	prefixOverride = keyspace.LimitOverride // entity -> storedOverride (JSON), TTL to expiry
	prefixTrust    = keyspace.Trust         // entity -> storedTrustState (JSON)
	prefixApplied  = keyspace.LabelApplied  // decision id \0 label -> applied marker
)

// AuditFunc records a change the limiter made in the audit trail: action
// ("limits.policy.update", "limits.override.set", "limits.trust.label"...),
// target ("limits:policy", "account:acc_42"), and the state before and
// after. A non-nil error is returned to the caller of the change, which is
// already made.
type AuditFunc func(ctx context.Context, action, target string, before, after any) error

// Options configure a Limiter. Zero fields take defaults.
type Options struct {
	// Compile compiles segment expressions; nil refuses policies with when.
	Compile PredicateCompiler
	// Lists receives the block-list entries of fraud labels; nil disables
	// blocking.
	Lists *lists.Store
	// Audit records every change; nil records nothing.
	Audit AuditFunc
	// TrustCacheEntries bounds the trust states kept in memory
	// (DefaultTrustCacheEntries).
	TrustCacheEntries int
	// Now is the clock of overrides and trust history; nil means time.Now.
	Now func() time.Time
}

// Limiter computes the dynamic limits of the paying entity and learns its
// trust from feedback. It implements engine.Limiter and
// engine.TrustUpdater and is safe for concurrent use. Build it with New on
// the Sources of an open feature store (features.Store.LimiterSources, or
// the cluster stores), then call Load.
type Limiter struct {
	db   kv.DB
	src  Sources
	opts Options
	kind string

	policy   atomic.Pointer[compiledPolicy]
	policyMu sync.Mutex // serialises SetPolicy

	trust trustCache

	ovMu      sync.RWMutex
	overrides map[string]Override // entity -> override, expired ones included until reload

	// locks serialise changes to one entity's trust and override, so
	// concurrent feedback loses no update.
	seed  maphash.Seed
	locks [64]sync.Mutex
}

var (
	_ engine.Limiter      = (*Limiter)(nil)
	_ engine.TrustUpdater = (*Limiter)(nil)
)

// SpendSource reads the daily spend limits are computed from: the hidden
// feature a feature store keeps per limit entity. features.Store is one;
// in cluster mode the Redis feature state is another.
type SpendSource interface {
	// DailySpent returns the spend, in base-currency minor units, of p's
	// limit entity over the day ending at p.OccurredAt, excluding p, and
	// whether it is complete (false while it is rebuilt from history).
	DailySpent(ctx context.Context, p *engine.Payment) (spent float64, complete bool, err error)
}

// DecisionSearch finds decisions; limits descriptions read an entity's
// newest payment through it.
type DecisionSearch interface {
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
}

// Sources are where a Limiter reads and keeps its state.
type Sources struct {
	// DB keeps the policy, overrides, trust and label markers.
	DB kv.DB
	// Spend reads daily spend.
	Spend SpendSource
	// Decisions finds an entity's newest payment.
	Decisions DecisionSearch
	// Kind is the limit entity: "account", "card" or "account_merchant".
	Kind string
	// MarkerTTL is how long a label's applied marker is kept: longer than
	// a decision is kept, so a late retry cannot apply it twice.
	MarkerTTL time.Duration
	// Corrupt, when set, counts stored trust states that do not decode.
	Corrupt func()
	// Seed, when set, prepares Spend at Load.
	Seed func(now time.Time) error
}

// New returns a Limiter on src with the built-in DefaultPolicy (whose
// segment expression needs opts.Compile). It does no I/O; call Load before
// the first decision.
func New(src Sources, opts Options) (*Limiter, error) {
	if !ValidEntity(src.Kind) {
		return nil, fmt.Errorf("limits: unknown limit entity %q", src.Kind)
	}
	if opts.TrustCacheEntries <= 0 {
		opts.TrustCacheEntries = DefaultTrustCacheEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cp, err := compilePolicy(DefaultPolicy(), opts.Compile)
	if err != nil {
		return nil, fmt.Errorf("limits: default policy: %w", err)
	}
	l := &Limiter{db: src.DB, src: src, opts: opts, kind: src.Kind, seed: maphash.MakeSeed(), overrides: map[string]Override{}}
	l.policy.Store(cp)
	l.trust.init(opts.TrustCacheEntries, l.loadTrust)
	return l, nil
}

// Entity returns the kind of entity limits are kept per: "account", "card"
// or "account_merchant".
func (l *Limiter) Entity() string { return l.kind }

// Load reads the stored policy (or takes DefaultPolicy when none was
// stored) and the overrides, and forgets the trust it holds in memory.
// Call it after the store is open; in cluster mode it runs again whenever
// another node changed limits state.
func (l *Limiter) Load(ctx context.Context) error {
	var stored *Policy
	v, err := kv.Get(ctx, l.db, []byte(keyPolicy))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		err = nil
	case err == nil:
		var p Policy
		p, err = decodePolicy(v)
		stored = &p
	}
	if err != nil {
		return fmt.Errorf("load limits policy: %w", err)
	}
	p := DefaultPolicy()
	if stored != nil {
		p = *stored
	}
	cp, err := compilePolicy(p, l.opts.Compile)
	if err != nil {
		return fmt.Errorf("compile limits policy v%d: %w", p.Version, err)
	}
	l.policy.Store(cp)
	if err := l.trust.loadIndex(ctx, l.db); err != nil {
		return err
	}
	if l.src.Seed != nil {
		if err := l.src.Seed(l.opts.Now()); err != nil {
			return fmt.Errorf("index daily spend: %w", err)
		}
	}
	return l.loadOverrides(ctx)
}

// Policy returns the live policy.
func (l *Limiter) Policy() Policy { return l.policy.Load().Policy }

// CheckPolicy validates p without storing it.
func (l *Limiter) CheckPolicy(p Policy) error {
	_, err := compilePolicy(p, l.opts.Compile)
	return err
}

// SetPolicy validates p, stores it as the next version and makes it live
// for every decision that starts afterwards. It returns the stored policy,
// with its version, author and time. Invalid input is a field error or a
// compile error of a segment's when.
func (l *Limiter) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	l.policyMu.Lock()
	defer l.policyMu.Unlock()
	prev := l.policy.Load()
	p.Version = prev.Version + 1
	p.Author = engine.Actor(ctx)
	p.UpdatedAt = l.opts.Now().UTC()
	cp, err := compilePolicy(p, l.opts.Compile)
	if err != nil {
		return Policy{}, err
	}
	data, err := encodePolicy(p)
	if err != nil {
		return Policy{}, err
	}
	if err := kv.Set(ctx, l.db, []byte(keyPolicy), data); err != nil {
		return Policy{}, fmt.Errorf("store limits policy: %w", err)
	}
	l.policy.Store(cp)
	if err := l.audit(ctx, "limits.policy.update", "limits:policy", prev.Policy, p); err != nil {
		return p, err
	}
	return p, nil
}

func (l *Limiter) audit(ctx context.Context, action, target string, before, after any) error {
	if l.opts.Audit == nil {
		return nil
	}
	if err := l.opts.Audit(ctx, action, target, before, after); err != nil {
		return fmt.Errorf("%s %s done, but not recorded in the audit trail: %w", action, target, err)
	}
	return nil
}

// Limits implements engine.Limiter. A currency the policy has no rate for
// is a *engine.FieldError on "currency" (the request is refused); a
// payment without the limit entity (no account id, say) has no limits.
func (l *Limiter) Limits(ctx context.Context, p *engine.Payment) (engine.Limits, error) {
	pol := l.policy.Load()
	rate, ok := pol.rate(p.Currency)
	if !ok {
		return engine.Limits{}, engine.Invalid("currency", "unknown_currency",
			fmt.Sprintf("currency %q has no exchange rate in the limits policy", p.Currency))
	}
	who, ok := EntityOf(l.kind, p)
	if !ok {
		return engine.Limits{}, nil
	}
	te, err := l.trust.get(ctx, who)
	if err != nil {
		return engine.Limits{}, fmt.Errorf("read trust of %s: %w", who, err)
	}
	spentBase, complete, err := l.src.Spend.DailySpent(ctx, p)
	if err != nil {
		return engine.Limits{}, fmt.Errorf("read daily spend of %s: %w", who, err)
	}
	seg, note := pol.segment(p)

	base, cur := pol.BaseCurrency, p.Currency
	toCur := func(x float64) int64 { return floorMinor(ConvertMinor(x, base, cur, rate)) }
	out := engine.Limits{
		Entity: who, Currency: cur, Policy: pol.label, Segment: seg.Name,
		BaseCurrency: base, Rate: rate,
		BaseSingleMax: toCur(float64(seg.SingleMax)), BaseDailyMax: toCur(float64(seg.DailyMax)),
	}
	if note != "" {
		out.Adjustments = append(out.Adjustments, note)
	}
	raw := pol.Trust.Initial
	if te.known {
		raw = te.trust
	}
	out.Trust = pol.clampTrust(raw)
	if te.cause != "" {
		out.Adjustments = append(out.Adjustments, te.cause)
	}
	if out.Trust != raw {
		out.Adjustments = append(out.Adjustments, fmt.Sprintf("trust %g held at %g by the policy's trust bounds", raw, out.Trust))
	}
	single, sc := clampAmount(float64(seg.SingleMax)*out.Trust, pol.LimitsFloor.SingleMax, pol.LimitsCeiling.SingleMax)
	daily, dc := clampAmount(float64(seg.DailyMax)*out.Trust, pol.LimitsFloor.DailyMax, pol.LimitsCeiling.DailyMax)
	out.SingleMax, out.DailyMax = toCur(single), toCur(daily)
	if sc != 0 {
		out.Adjustments = append(out.Adjustments, clampNote("single_max", sc, out.SingleMax, cur))
	}
	if dc != 0 {
		out.Adjustments = append(out.Adjustments, clampNote("daily_max", dc, out.DailyMax, cur))
	}
	if ov, ok := l.override(who); ok {
		l.applyOverride(&out, ov, pol)
	}
	if !complete {
		out.Adjustments = append(out.Adjustments, "daily spend still being rebuilt from history: it may be low")
	}
	out.DailySpent = int64(math.Round(ConvertMinor(spentBase, base, cur, rate)))
	out.DailyRemaining = max(0, out.DailyMax-out.DailySpent)
	return out, nil
}

func clampNote(name string, side int, v int64, cur string) string {
	if side > 0 {
		return fmt.Sprintf("%s capped at the policy ceiling of %s", name, formatMinor(v, cur))
	}
	return fmt.Sprintf("%s raised to the policy floor of %s", name, formatMinor(v, cur))
}

// lock returns the mutex serialising changes to one entity.
func (l *Limiter) lock(entity string) *sync.Mutex {
	return &l.locks[maphash.String(l.seed, entity)%uint64(len(l.locks))]
}
