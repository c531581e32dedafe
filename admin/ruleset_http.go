package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// MaxCommentLen bounds a publish or rollback comment.
const MaxCommentLen = 1000

type publishJSON struct {
	Comment string `json:"comment"`
	// CanaryPercent, 1 to 99, publishes the draft as a canary deciding
	// that share of transactions (by a hash of the transaction id); zero
	// makes it live for every payment.
	CanaryPercent int    `json:"canary_percent"`
	Guard         *Guard `json:"guard"`
}

type rollbackJSON struct {
	Version int64  `json:"version"`
	Comment string `json:"comment"`
}

// versionJSON is one version with its rules.
type versionJSON struct {
	VersionInfo
	Live bool       `json:"live"`
	Spec rules.Spec `json:"spec"`
}

// versionInfoJSON is one version in a listing.
type versionInfoJSON struct {
	VersionInfo
	Live bool `json:"live"`
}

func (a *API) liveVersion() int64 {
	if rs := a.cfg.Engine.Rules(); rs != nil {
		return rs.Version()
	}
	return 0
}

// makeLive publishes spec as the next version and makes it live. The
// caller holds a.mu.
func (a *API) makeLive(c echo.Context, spec rules.Spec, comment string) (Version, error) {
	if len(comment) > MaxCommentLen {
		return Version{}, engine.Invalid("comment", "too_long", fmt.Sprintf("comment is longer than %d characters", MaxCommentLen))
	}
	actor := engine.Actor(c.Request().Context())
	return a.cfg.Versions.Publish(spec, a.env(), actor, comment, func(s *rules.Set) { a.cfg.Engine.SetRules(s) })
}

// auditVersion is a version as the audit trail records it: before a
// publish or rollback, just its number and hash; after, what changed too.
type auditVersion struct {
	Version      int64  `json:"version"`
	Hash         string `json:"hash,omitempty"`
	Comment      string `json:"comment,omitempty"`
	RolledBackTo int64  `json:"rolled_back_to,omitempty"`
	// CanaryPercent and Guard: a canary publish.
	CanaryPercent int    `json:"canary_percent,omitempty"`
	Guard         *Guard `json:"guard,omitempty"`
	*diffSummary
}

// publish is POST /admin/ruleset/publish: compiles the whole draft and,
// only if every rule compiles, makes it live as a new version (201).
func (a *API) publish(c echo.Context) error {
	var in publishJSON
	if err := a.bind(c, &in, true); err != nil {
		return err
	}
	if in.CanaryPercent != 0 && (in.CanaryPercent < 1 || in.CanaryPercent > 99) {
		return engine.Invalid("canary_percent", "invalid_canary_percent", "canary_percent must be between 1 and 99")
	}
	if in.Guard != nil {
		if in.CanaryPercent == 0 {
			return engine.Invalid("guard", "canary_required", "a guard needs canary_percent")
		}
		if err := in.Guard.check(); err != nil {
			return err
		}
	}
	if len(in.Comment) > MaxCommentLen {
		return engine.Invalid("comment", "too_long", fmt.Sprintf("comment is longer than %d characters", MaxCommentLen))
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.noCanary(); err != nil {
		return err
	}
	spec, m, err := a.drafts.spec(ctx)
	if err != nil {
		return err
	}
	prevSpec, prevNumber, err := a.liveSpec()
	if err != nil {
		return err
	}
	var (
		ver Version
		run *canaryRun
	)
	if in.CanaryPercent > 0 {
		ver, run, err = a.startCanary(ctx, spec, in.Comment, in.CanaryPercent, in.Guard)
	} else {
		ver, err = a.makeLive(c, spec, in.Comment)
	}
	if err != nil {
		return err
	}
	// The version is live: the draft follows it even if the caller has
	// gone, and the change is recorded (a.record does not cancel either).
	m.BaseVersion, m.Changed = ver.Number, false
	if err := a.drafts.put(context.WithoutCancel(ctx), m, nil); err != nil {
		return err
	}
	before := auditVersion{Version: prevNumber}
	if prevNumber > 0 {
		before.Hash = prevSpec.Hash()
	}
	d := diffSpecs(prevSpec, ver.Spec).summary()
	after := auditVersion{Version: ver.Number, Hash: ver.Hash, Comment: ver.Comment, diffSummary: &d}
	if run != nil {
		after.CanaryPercent, after.Guard = run.Percent, run.Guard
	}
	if err := a.record(ctx, "ruleset.publish", "ruleset", before, after); err != nil {
		return err
	}
	if run != nil {
		return c.JSON(http.StatusCreated, struct {
			versionInfoJSON
			Canary canaryState `json:"canary"`
		}{versionInfoJSON{VersionInfo: ver.Info(), Live: false}, run.canaryState})
	}
	return c.JSON(http.StatusCreated, versionInfoJSON{VersionInfo: ver.Info(), Live: true})
}

// noCanary refuses a change of the live version while a canary runs. The
// caller holds a.mu.
func (a *API) noCanary() error {
	if run := a.canary.Load(); run != nil {
		return fmt.Errorf("version %d is running as a canary: promote or abort it first: %w", run.Version, engine.ErrConflict)
	}
	return nil
}

// getCanary is GET /admin/ruleset/canary: the running canary, its guard,
// and both versions' decisions and rates over the guard window.
func (a *API) getCanary(c echo.Context) error {
	return c.JSON(http.StatusOK, a.canaryStatus())
}

// promoteCanary is POST /admin/ruleset/canary/promote.
func (a *API) promoteCanary(c echo.Context) error {
	st, err := a.PromoteCanary(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"version": st.Version, "live": true, "promoted_from_percent": st.Percent})
}

// abortCanaryHTTP is POST /admin/ruleset/canary/abort {"reason"}: the
// base version is published again and decides every payment.
func (a *API) abortCanaryHTTP(c echo.Context) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := a.bind(c, &in, true); err != nil {
		return err
	}
	if len(in.Reason) > MaxCommentLen {
		return engine.Invalid("reason", "too_long", fmt.Sprintf("reason is longer than %d characters", MaxCommentLen))
	}
	if in.Reason == "" {
		in.Reason = "aborted by hand"
	}
	ver, err := a.AbortCanary(c.Request().Context(), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, versionInfoJSON{VersionInfo: ver.Info(), Live: true})
}

// latest returns the latest version, or a zero Version when none was
// published.
func (a *API) latest() (Version, error) {
	v, err := a.cfg.Versions.Latest()
	if errors.Is(err, engine.ErrNotFound) {
		return Version{}, nil
	}
	return v, err
}

// rollback is POST /admin/ruleset/rollback {"version": n}: publishes
// version n's rules and thresholds again as a new version. A draft without
// unpublished changes follows; one with changes is kept.
func (a *API) rollback(c echo.Context) error {
	var in rollbackJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	if in.Version <= 0 {
		return engine.Invalid("version", "required", "version must be the number of an earlier version")
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.noCanary(); err != nil {
		return err
	}
	target, err := a.cfg.Versions.Get(in.Version)
	if err != nil {
		return err
	}
	prev, err := a.latest()
	if err != nil {
		return err
	}
	if prev.Number == in.Version {
		return fmt.Errorf("version %d is the live version: %w", in.Version, engine.ErrConflict)
	}
	comment := in.Comment
	if comment == "" {
		comment = fmt.Sprintf("rollback to version %d", in.Version)
	}
	ver, err := a.makeLive(c, target.Spec, comment)
	if err != nil {
		return err
	}
	// The version is live: the draft follows it even if the caller has
	// gone.
	ctx = context.WithoutCancel(ctx)
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	if !m.Changed {
		m.BaseVersion = ver.Number
		if err := a.drafts.replace(ctx, m, ver.Spec, ver.Author, ver.CreatedAt); err != nil {
			return err
		}
	}
	d := diffSpecs(prev.Spec, ver.Spec).summary()
	after := auditVersion{Version: ver.Number, Hash: ver.Hash, Comment: ver.Comment, RolledBackTo: in.Version, diffSummary: &d}
	if err := a.record(ctx, "ruleset.rollback", "ruleset", auditVersion{Version: prev.Number, Hash: prev.Hash}, after); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, versionInfoJSON{VersionInfo: ver.Info(), Live: true})
}

// listVersions is GET /admin/ruleset/versions?before=&limit=, newest first.
func (a *API) listVersions(c echo.Context) error {
	limit, err := queryInt(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before", 0, 1, 1<<62)
	if err != nil {
		return err
	}
	infos, err := a.cfg.Versions.Page(before, int(limit))
	if err != nil {
		return err
	}
	live := a.liveVersion()
	out := struct {
		Live       int64             `json:"live_version"`
		Versions   []versionInfoJSON `json:"versions"`
		NextBefore int64             `json:"next_before,omitempty"`
	}{Live: live, Versions: make([]versionInfoJSON, len(infos))}
	for i, v := range infos {
		out.Versions[i] = versionInfoJSON{VersionInfo: v, Live: v.Number == live}
	}
	if n := len(infos); n == int(limit) && infos[n-1].Number > 1 {
		out.NextBefore = infos[n-1].Number
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getVersion(c echo.Context) error {
	n, err := strconv.ParseInt(c.Param("n"), 10, 64)
	if err != nil || n <= 0 {
		return engine.Invalid("version", "invalid_version", "a version is a positive integer")
	}
	ver, err := a.cfg.Versions.Get(n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, versionJSON{VersionInfo: ver.Info(), Live: n == a.liveVersion(), Spec: ver.Spec})
}

// specAt resolves a version reference: a number, "live" or "draft". name
// is the query parameter it came from.
func (a *API) specAt(ctx context.Context, ref, name string) (rules.Spec, error) {
	switch ref {
	case "draft":
		spec, _, err := a.drafts.spec(ctx)
		return spec, err
	case "live":
		n := a.liveVersion()
		if n == 0 {
			return rules.Spec{}, nil
		}
		ref = strconv.FormatInt(n, 10)
	}
	n, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || n <= 0 {
		return rules.Spec{}, engine.Invalid(name, "invalid_version", name+" must be a version number, live or draft")
	}
	ver, err := a.cfg.Versions.Get(n)
	if err != nil {
		return rules.Spec{}, err
	}
	return ver.Spec, nil
}

// diff is GET /admin/ruleset/diff?from=&to=: each a version number, live or
// draft; from defaults to live and to to draft.
func (a *API) diff(c echo.Context) error {
	from, to := c.QueryParam("from"), c.QueryParam("to")
	if from == "" {
		from = "live"
	}
	if to == "" {
		to = "draft"
	}
	ctx := c.Request().Context()
	fromSpec, err := a.specAt(ctx, from, "from")
	if err != nil {
		return err
	}
	toSpec, err := a.specAt(ctx, to, "to")
	if err != nil {
		return err
	}
	d := diffSpecs(fromSpec, toSpec)
	d.From, d.To = from, to
	return c.JSON(http.StatusOK, d)
}
