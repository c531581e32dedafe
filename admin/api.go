package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// DefaultMaxBodyBytes bounds admin request bodies: room for a rule set of
// a few thousand rules or a batch of some 50,000 list items.
const DefaultMaxBodyBytes = 8 << 20

// FeatureDefinitions holds the live feature definitions: the Badger store
// on one node, the shared definitions in cluster mode.
type FeatureDefinitions interface {
	Definitions() []features.Definition
	SetDefinitions(ctx context.Context, defs []features.Definition) error
	// Status reports the rebuild of a feature's history; ok is false when
	// none ran.
	Status(feature string) (st features.BackfillStatus, ok bool)
}

// Config configures an API. DB, Engine, Versions, Lists and Features are
// required.
type Config struct {
	// DB is where the drafts, the running canary and (unless Audit is
	// set) the audit trail live: on a single node features.Store.KV().
	DB kv.DB
	// Engine receives every rule set that goes live.
	Engine *engine.Engine
	// Versions keeps the published rule sets.
	Versions *Versions
	// Lists are the named lists rules read with in_list.
	Lists *features.Lists
	// Features holds the feature definitions.
	Features FeatureDefinitions
	// Audit is the trail changes are recorded in; nil means
	// NewAudit(DB, Now).
	Audit *Audit
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what cannot be returned; nil discards.
	Log *slog.Logger
	// MaxBodyBytes bounds request bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// API is the analysts' admin API: the draft rules and their publication,
// the rule set versions, lists, feature definitions and the audit trail.
// Create it with New, call Load, then Register. It is safe for concurrent
// use.
type API struct {
	cfg    Config
	drafts *drafts
	audit  *Audit

	// mu serialises every change to the draft, the live rule set and the
	// feature definitions, so a publish always compiles against the
	// features that exist and a feature in use cannot be deleted meanwhile.
	mu sync.Mutex

	// canary is the running canary publish, nil when none (canary.go).
	canary atomic.Pointer[canaryRun]
	// ruleGuard counts the live version's guarded rules (ruleguard.go).
	ruleGuard atomic.Pointer[ruleGuard]
	onGuard   func(ctx context.Context, ev GuardEvent)
}

// New returns an API for cfg. It does no I/O.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Audit == nil {
		cfg.Audit = NewAudit(cfg.DB, cfg.Now)
	}
	return &API{cfg: cfg, drafts: &drafts{db: cfg.DB}, audit: cfg.Audit}
}

// Audit returns the audit trail, for other admin changes (limits, keys) to
// record themselves in.
func (a *API) Audit() *Audit { return a.audit }

// Load seeds the draft from the latest published version when there is no
// draft yet, or when the draft has no unpublished changes and a newer
// version was published (by --rules at start-up).
//
// A canary that was running when the process stopped is restored. Load
// takes no context; it reads under context.Background().
func (a *API) Load() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx := context.Background()
	if err := a.loadDraft(ctx); err != nil {
		return err
	}
	return a.loadCanary(ctx)
}

func (a *API) loadDraft(ctx context.Context) error {
	m, ok, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	latest, err := a.cfg.Versions.Latest()
	switch {
	case errors.Is(err, engine.ErrNotFound):
		if !ok {
			return a.drafts.put(ctx, draftMeta{UpdatedAt: a.cfg.Now().UTC(), UpdatedBy: "system"}, nil)
		}
		return nil
	case err != nil:
		return err
	case ok && (m.Changed || m.BaseVersion == latest.Number):
		return nil
	}
	return a.drafts.replace(ctx, draftMeta{BaseVersion: latest.Number, UpdatedAt: a.cfg.Now().UTC(), UpdatedBy: "system"}, latest.Spec, latest.Author, latest.CreatedAt)
}

// Register adds the admin routes to g. Reads are open to analysts and
// auditors, changes to analysts; admins pass everywhere (require decides).
func (a *API) Register(g *echo.Group, require Require) {
	read := require(engine.RoleAnalyst, engine.RoleAuditor)
	write := require(engine.RoleAnalyst)

	g.GET("/rules", a.listRules, read)
	g.POST("/rules", a.createRule, write)
	g.POST("/rules/validate", a.validate, write)
	g.GET("/rules/:id", a.getRule, read)
	g.PUT("/rules/:id", a.updateRule, write)
	g.DELETE("/rules/:id", a.deleteRule, write)

	g.GET("/ruleset/draft", a.getDraft, read)
	g.PUT("/ruleset/draft", a.updateDraft, write)
	g.POST("/ruleset/publish", a.publish, write)
	g.POST("/ruleset/rollback", a.rollback, write)
	g.GET("/ruleset/versions", a.listVersions, read)
	g.GET("/ruleset/versions/:n", a.getVersion, read)
	g.GET("/ruleset/diff", a.diff, read)
	g.GET("/ruleset/canary", a.getCanary, read)
	g.POST("/ruleset/canary/promote", a.promoteCanary, write)
	g.POST("/ruleset/canary/abort", a.abortCanaryHTTP, write)
	g.GET("/ruleset/export", a.export, read)
	g.POST("/ruleset/import", a.importFile, write)

	g.GET("/lists", a.listLists, read)
	g.GET("/lists/:name", a.getList, read)
	g.PUT("/lists/:name", a.putList, write)
	g.DELETE("/lists/:name", a.deleteList, write)
	g.GET("/lists/:name/items", a.listItems, read)
	g.POST("/lists/:name/items", a.addItems, write)
	g.DELETE("/lists/:name/items", a.deleteItem, write)
	g.DELETE("/lists/:name/items/*", a.deleteItem, write)

	g.GET("/features", a.listFeatures, read)
	g.POST("/features", a.createFeature, write)
	g.GET("/features/:name", a.getFeature, read)
	g.PUT("/features/:name", a.updateFeature, write)
	g.DELETE("/features/:name", a.deleteFeature, write)

	g.GET("/audit", a.queryAudit, read)
}

// env is the environment rules compile against now: the defined features
// and the lists.
func (a *API) env() rules.Env {
	defs := a.cfg.Features.Definitions()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return rules.Env{Features: names, Lists: a.cfg.Lists}
}

// liveSpec returns the spec of the live version, which is the latest
// published one (empty when none was published).
func (a *API) liveSpec() (rules.Spec, int64, error) {
	if set, ok := liveSet(a.cfg.Engine.Rules()); ok && set.Version() > 0 {
		return set.Spec(), set.Version(), nil // no need to decode it again
	}
	v, err := a.cfg.Versions.Latest()
	if errors.Is(err, engine.ErrNotFound) {
		return rules.Spec{}, 0, nil
	}
	if err != nil {
		return rules.Spec{}, 0, err
	}
	return v.Spec, v.Number, nil
}

// recompileLive compiles the live version again against the current
// features, so rules may name a feature as soon as it is defined. The
// caller holds a.mu.
func (a *API) recompileLive() error {
	spec, n, err := a.liveSpec()
	if err != nil || n == 0 {
		return err
	}
	set, err := rules.Compile(spec, a.env(), n)
	if err != nil {
		return fmt.Errorf("recompile live rule set version %d: %w", n, err)
	}
	if c, ok := a.cfg.Engine.Rules().(*engine.Canary); ok {
		cand, ok := c.Candidate.(*rules.Set)
		if !ok {
			return fmt.Errorf("recompile canary: candidate is not a compiled rule set")
		}
		next, err := rules.Compile(cand.Spec(), a.env(), cand.Version())
		if err != nil {
			return fmt.Errorf("recompile canary rule set version %d: %w", cand.Version(), err)
		}
		a.cfg.Engine.SetRules(&engine.Canary{Live: set, Candidate: next, Percent: c.Percent})
		return nil
	}
	a.cfg.Engine.SetRules(set)
	return nil
}

// record appends an audit entry for a change already made.
func (a *API) record(ctx context.Context, action, target string, before, after any) error {
	if _, err := a.audit.Record(ctx, Entry{Action: action, Target: target, Before: before, After: after}); err != nil {
		return fmt.Errorf("%s %s done, but not recorded in the audit trail: %w", action, target, err)
	}
	return nil
}

// Draft returns the draft rule set as it stands, for backtests of a draft
// candidate. It is safe for concurrent use.
func (a *API) Draft(ctx context.Context) (rules.Spec, error) {
	if err := ctx.Err(); err != nil {
		return rules.Spec{}, err
	}
	spec, _, err := a.drafts.spec(ctx)
	return spec, err
}
