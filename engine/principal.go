package engine

import "context"

// Role is what an API key may do.
type Role string

// Roles. Admin may do everything.
const (
	RoleGateway Role = "gateway" // decisions and feedback
	RoleAnalyst Role = "analyst" // rules, lists, features, limits, backtests, reading decisions
	RoleAuditor Role = "auditor" // reading decisions, explanations and the audit trail
	RoleAdmin   Role = "admin"   // keys and everything else
	// RoleMetrics may only scrape /metrics: a Prometheus scraper needs no
	// access to payments, and per-rule counters must not be public (they
	// would tell a fraudster which rule caught a probe).
	RoleMetrics Role = "metrics"
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool {
	return r == RoleGateway || r == RoleAnalyst || r == RoleAuditor || r == RoleAdmin || r == RoleMetrics
}

// Principal is the caller of a request: the API key's name, used in the
// audit trail, and its role.
type Principal struct {
	KeyID string
	Name  string
	Role  Role
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx; ok is false for an
// unauthenticated context.
func PrincipalFrom(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Actor returns the name to record as the author of a change made in ctx:
// the principal's name, or "system" when there is none.
func Actor(ctx context.Context) string {
	if p, ok := PrincipalFrom(ctx); ok && p.Name != "" {
		return p.Name
	}
	return "system"
}
