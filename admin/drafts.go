package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
)

// Draft keys: one per rule, and one for the thresholds and bookkeeping.
const (
	prefixDraftRule = keyspace.DraftRule
	keyDraftMeta    = keyspace.DraftMeta
)

// draftMeta is the draft's thresholds and where it stands against the
// published versions.
type draftMeta struct {
	ChallengeThreshold int `json:"challenge_threshold"`
	DenyThreshold      int `json:"deny_threshold"`
	// BaseVersion is the version the draft was last published as or
	// seeded from.
	BaseVersion int64 `json:"base_version"`
	// Changed is true once the draft was edited after BaseVersion. An
	// unchanged draft follows the live version (rollbacks, --rules at
	// start-up).
	Changed bool  `json:"changed"`
	NextPos int64 `json:"next_pos"`
	// MaxVersions is the highest version each rule id ever had in the
	// draft, so a rule edited after a rollback gets a version number it
	// never had before.
	MaxVersions map[string]int `json:"max_versions,omitempty"`
	UpdatedAt   time.Time      `json:"updated_at"`
	UpdatedBy   string         `json:"updated_by,omitempty"`
}

// nextVersion returns the version a new edit of rule id gets: one past
// both floor (its current version) and any version it ever had.
func (m *draftMeta) nextVersion(id string, floor int) int {
	v := max(m.MaxVersions[id], floor) + 1
	m.saw(id, v)
	return v
}

// saw notes that rule id had version v.
func (m *draftMeta) saw(id string, v int) {
	if m.MaxVersions == nil {
		m.MaxVersions = map[string]int{}
	}
	m.MaxVersions[id] = max(m.MaxVersions[id], v)
}

// draftRule is one rule of the draft with its place and last author.
type draftRule struct {
	rules.Rule
	Pos       int64     `json:"pos"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// drafts is the draft rule set in a kv.DB. Callers serialise changes.
type drafts struct {
	db kv.DB
}

func draftRuleKey(id string) []byte { return []byte(prefixDraftRule + id) }

// meta returns the draft's meta; ok is false when there is no draft yet.
func (d *drafts) meta(ctx context.Context) (m draftMeta, ok bool, err error) {
	err = d.db.View(ctx, func(tx kv.Tx) error { return getJSON(tx, []byte(keyDraftMeta), &m) })
	if errors.Is(err, kv.ErrNotFound) {
		return draftMeta{}, false, nil
	}
	if err != nil {
		return draftMeta{}, false, fmt.Errorf("read draft: %w", err)
	}
	return m, true, nil
}

// rules returns the draft's rules in order.
func (d *drafts) rules(ctx context.Context) ([]draftRule, error) {
	var out []draftRule
	err := d.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixDraftRule), kv.ScanOptions{}, func(_, b []byte) error {
			var r draftRule
			if err := decodeStored(b, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read draft rules: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, nil
}

// rule returns one draft rule or an error wrapping engine.ErrNotFound.
func (d *drafts) rule(ctx context.Context, id string) (draftRule, error) {
	var r draftRule
	err := d.db.View(ctx, func(tx kv.Tx) error { return getJSON(tx, draftRuleKey(id), &r) })
	if errors.Is(err, kv.ErrNotFound) {
		return draftRule{}, fmt.Errorf("rule %q: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return draftRule{}, fmt.Errorf("read draft rule %q: %w", id, err)
	}
	return r, nil
}

// spec returns the draft as a rule set spec.
func (d *drafts) spec(ctx context.Context) (rules.Spec, draftMeta, error) {
	m, _, err := d.meta(ctx)
	if err != nil {
		return rules.Spec{}, m, err
	}
	rs, err := d.rules(ctx)
	if err != nil {
		return rules.Spec{}, m, err
	}
	spec := rules.Spec{ChallengeThreshold: m.ChallengeThreshold, DenyThreshold: m.DenyThreshold, Rules: make([]rules.Rule, len(rs))}
	for i, r := range rs {
		spec.Rules[i] = r.Rule
	}
	return spec, m, nil
}

// put stores m and, when r is not nil, the rule r.
func (d *drafts) put(ctx context.Context, m draftMeta, r *draftRule) error {
	meta, err := encodeStored(m)
	if err != nil {
		return fmt.Errorf("encode draft: %w", err)
	}
	err = d.db.Update(ctx, func(tx kv.Tx) error {
		if r != nil {
			data, err := encodeStored(r)
			if err != nil {
				return err
			}
			if err := tx.Set(draftRuleKey(r.ID), data); err != nil {
				return err
			}
		}
		return tx.Set([]byte(keyDraftMeta), meta)
	})
	if err != nil {
		return fmt.Errorf("store draft: %w", err)
	}
	return nil
}

// remove deletes rule id and stores m.
func (d *drafts) remove(ctx context.Context, m draftMeta, id string) error {
	meta, err := encodeStored(m)
	if err != nil {
		return fmt.Errorf("encode draft: %w", err)
	}
	err = d.db.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Delete(draftRuleKey(id)); err != nil {
			return err
		}
		return tx.Set([]byte(keyDraftMeta), meta)
	})
	if err != nil {
		return fmt.Errorf("delete draft rule: %w", err)
	}
	return nil
}

// replace makes spec the whole draft, with m's bookkeeping (its thresholds
// are taken from spec), in one transaction.
func (d *drafts) replace(ctx context.Context, m draftMeta, spec rules.Spec, author string, at time.Time) error {
	old, err := d.rules(ctx)
	if err != nil {
		return err
	}
	m.ChallengeThreshold, m.DenyThreshold = spec.ChallengeThreshold, spec.DenyThreshold
	m.NextPos = int64(len(spec.Rules))
	for _, r := range spec.Rules {
		m.saw(r.ID, r.Version)
	}
	meta, err := encodeStored(m)
	if err != nil {
		return fmt.Errorf("encode draft: %w", err)
	}
	err = d.db.Update(ctx, func(tx kv.Tx) error {
		for _, r := range old {
			if err := tx.Delete(draftRuleKey(r.ID)); err != nil {
				return err
			}
		}
		for i, r := range spec.Rules {
			data, err := encodeStored(draftRule{Rule: r, Pos: int64(i), UpdatedAt: at, UpdatedBy: author})
			if err != nil {
				return err
			}
			if err := tx.Set(draftRuleKey(r.ID), data); err != nil {
				return err
			}
		}
		return tx.Set([]byte(keyDraftMeta), meta)
	})
	if err != nil {
		return fmt.Errorf("replace draft: %w", err)
	}
	return nil
}
