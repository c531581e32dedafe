package features

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/riskengine/risk/engine"
)

// Calculator computes features over entity states that live outside a
// Store: a shared store such as Redis reads the states a payment touches,
// asks the Calculator for the values, and writes back what Apply returns.
// It holds no state of its own and does no I/O, and it uses the same
// windows, buckets and encodings as the Store, so a stream of decisions
// gives the same values through either.
//
// Features kept per the same entity paths form one group, with one state
// per entity value (one per card, one per account and merchant pair). A
// state is named by a StateKey whose text starts with the group's ID, a
// hash of the group's definitions: when a definition changes, every state
// of its group is named anew and starts empty.
//
// A Calculator is immutable and safe for concurrent use; a definition
// change builds a new one.
type Calculator struct {
	fs     *featureSet
	groups []Group
	// spent is the hidden daily spend feature and spentGroup its group;
	// spent is nil without a limits entity.
	spent      *feature
	spentGroup int
	longest    time.Duration
}

// CalculatorOptions configure a Calculator. The zero value has no where
// filters and no daily spend.
type CalculatorOptions struct {
	// CompileFilter compiles where expressions; nil refuses definitions
	// that have one.
	CompileFilter FilterCompiler
	// LimitsEntity, when set ("account", "card" or "account_merchant"),
	// keeps the hidden 24-hour spend a limiter reads (Spent), as
	// Options.LimitsEntity does for a Store.
	LimitsEntity string
}

// Group describes the features kept per one entity spec.
type Group struct {
	// ID is a short hash of the group's definitions and of the state
	// encoding. It starts every StateKey of the group, so it changes, and
	// the group's state starts empty, whenever one of them changes.
	ID string
	// Spec is the entity paths joined by commas: "account.id,merchant.id".
	Spec string
	// Features names the group's features, hidden ones included, in
	// definition order.
	Features []string
	// Keep is how long a state may matter after its newest event: the
	// longest window of the group plus two of its buckets.
	Keep time.Duration
}

// StateKey names the state of one entity of one group.
type StateKey struct {
	// Group indexes Calculator.Groups.
	Group int
	// Key is the group's ID, ':', then the entity spec and its values
	// separated by NUL bytes. It is binary text, unique per group version
	// and entity.
	Key string
}

// calculatorStateVersion is part of every group ID: a change to the state
// encoding or its meaning bumps it, so no state of another meaning is read.
const calculatorStateVersion = 1

// NewCalculator checks and compiles defs and returns their Calculator.
func NewCalculator(defs []Definition, opts CalculatorOptions) (*Calculator, error) {
	list, err := compileAll(defs, opts.CompileFilter)
	if err != nil {
		return nil, err
	}
	c := &Calculator{spentGroup: -1}
	if opts.LimitsEntity != "" {
		if !ValidLimitsEntity(opts.LimitsEntity) {
			return nil, engine.Invalid("limits_entity", "invalid", fmt.Sprintf("unknown limits entity %q", opts.LimitsEntity))
		}
		// The Store's spend feature also marks an index of its own; a
		// Calculator reads the state instead, so it takes the amount only.
		f := spentFeature(opts.LimitsEntity)
		f.spend, f.amount = nil, spentAmount
		c.spent = f
		list = append(list, f)
	}
	c.fs = newFeatureSet(list)
	for i, g := range c.fs.groups {
		cg := Group{ID: groupID(g), Spec: g.spec}
		for _, f := range g.feats {
			cg.Features = append(cg.Features, f.def.Name)
			cg.Keep = max(cg.Keep, f.window+2*f.bucket)
			if f == c.spent {
				c.spentGroup = i
			}
		}
		c.longest = max(c.longest, cg.Keep)
		c.groups = append(c.groups, cg)
	}
	return c, nil
}

// groupID hashes what the state of g means: the encoding version and every
// definition of the group, in name order so that reordering changes
// nothing.
func groupID(g *group) string {
	feats := slices.Clone(g.feats)
	slices.SortFunc(feats, func(a, b *feature) int { return strings.Compare(a.def.Name, b.def.Name) })
	var b []byte
	b = strconv.AppendInt(b, calculatorStateVersion, 10)
	b = append(b, 0)
	b = append(b, g.spec...)
	for _, f := range feats {
		d := f.def
		for _, s := range []string{d.Name, entitySpec(d.Entity), string(d.Aggregate), d.Field, d.Window, d.Where, strconv.FormatBool(f.hidden)} {
			b = append(b, 0)
			b = append(b, s...)
		}
	}
	// 48 bits: two versions of a group colliding is about 1 in 3e14.
	return strconv.FormatUint(xxhash.Sum64(b)>>16, 16)
}

// Groups returns the entity groups, in the order StateKey.Group indexes.
func (c *Calculator) Groups() []Group { return slices.Clone(c.groups) }

// Longest returns the longest Group.Keep: how far back decisions matter.
func (c *Calculator) Longest() time.Duration { return c.longest }

// Names returns the names of the features Values returns, in order.
func (c *Calculator) Names() []string {
	out := make([]string, 0, c.fs.visible)
	for _, f := range c.fs.list {
		if !f.hidden {
			out = append(out, f.def.Name)
		}
	}
	return out
}

// Definitions returns the definitions the Calculator was built from.
func (c *Calculator) Definitions() []Definition {
	out := make([]Definition, 0, c.fs.visible)
	for _, f := range c.fs.list {
		if !f.hidden {
			out = append(out, f.def)
		}
	}
	return out
}

// Keys appends to dst the key of every state p touches: one per group whose
// entity paths are all present in p, in group order.
func (c *Calculator) Keys(p *engine.Payment, dst []StateKey) []StateKey {
	var buf [160]byte
	for i, g := range c.fs.groups {
		if k, ok := c.key(i, g, p, buf[:0]); ok {
			dst = append(dst, StateKey{Group: i, Key: string(k)})
		}
	}
	return dst
}

func (c *Calculator) key(i int, g *group, p *engine.Payment, buf []byte) ([]byte, bool) {
	buf = append(buf, c.groups[i].ID...)
	buf = append(buf, ':')
	return entityKey(g.spec, g.paths, p, buf)
}

// Values appends the value of every visible feature for p to dst, in
// definition order, computed from states: states[i] is the encoded state
// of keys[i] (from Keys(p)), nil when there is none. Values exclude nothing
// on their own: a caller reads the states before recording p.
//
// Every value is marked ready but those of a state that does not decode:
// they keep their empty value, marked not ready, and the error (wrapping
// engine.ErrCorrupt) names the group; the other groups are still computed.
func (c *Calculator) Values(p *engine.Payment, keys []StateKey, states [][]byte, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	if len(keys) != len(states) {
		return dst, fmt.Errorf("feature values: %d keys but %d states", len(keys), len(states))
	}
	base := len(dst)
	for _, f := range c.fs.list {
		if !f.hidden {
			dst = append(dst, engine.FeatureValue{Name: f.def.Name, Value: emptyValue(f), Ready: true})
		}
	}
	vals := dst[base:]
	var errs []error
	for i, k := range keys {
		if states[i] == nil {
			continue
		}
		g := c.fs.groups[k.Group]
		e, err := decodeEntity(states[i], nil)
		if err != nil {
			c.MarkNotReady(k.Group, vals)
			errs = append(errs, fmt.Errorf("read features of %s: %w", g.spec, err))
			continue
		}
		for j, f := range g.feats {
			if g.out[j] < 0 {
				continue
			}
			if w := e.find(f); w != nil {
				vals[g.out[j]].Value = w.value(f, p.OccurredAt)
			}
		}
	}
	return dst, errors.Join(errs...)
}

// MarkNotReady marks the values of group's features not ready in vals,
// which holds one value per visible feature as Values returns them.
func (c *Calculator) MarkNotReady(group int, vals []engine.FeatureValue) {
	for _, i := range c.fs.groups[group].out {
		if i >= 0 && i < len(vals) {
			vals[i].Ready = false
		}
	}
}

// errWrongEntity is Apply's answer for a record of another entity.
var errWrongEntity = errors.New("apply features: record is not of the state's entity")

// Apply records recs into state, the encoded state of key (nil when there
// is none), and returns the new encoding. changed is false, and next is
// state, when no feature of the group counts any of recs (a where filter
// refuses them, or the aggregated field is absent). Every rec must be of
// key's entity. A state that does not decode is an error wrapping
// engine.ErrCorrupt; it is left for a rebuild rather than overwritten.
func (c *Calculator) Apply(key StateKey, state []byte, recs ...*engine.Record) (next []byte, changed bool, err error) {
	return c.ApplyCounted(key, state, recs, nil)
}

// NotCounted is the Counted value of a decision a state holds nothing of.
const NotCounted = -1

// ApplyCounted is Apply for decisions the state may already hold:
// counted[i] is NotCounted when state holds nothing of recs[i], or the
// number of labels recs[i] had when it was counted into state (nil counted
// means none is counted). A decision counted before is counted again only
// into the features whose where reads labels and that admit it with its
// labels now but did not with the labels it was counted with: a label's
// late effect, as a Store applies it when the label is added.
func (c *Calculator) ApplyCounted(key StateKey, state []byte, recs []*engine.Record, counted []int) (next []byte, changed bool, err error) {
	if key.Group < 0 || key.Group >= len(c.fs.groups) {
		return state, false, fmt.Errorf("apply features: no group %d", key.Group)
	}
	if counted != nil && len(counted) != len(recs) {
		return state, false, fmt.Errorf("apply features: %d records but %d counts", len(recs), len(counted))
	}
	g := c.fs.groups[key.Group]
	e := &entity{}
	if state != nil {
		if e, err = decodeEntity(state, nil); err != nil {
			return state, false, fmt.Errorf("apply features of %s: %w", g.spec, err)
		}
	}
	var buf [160]byte
	for i, rec := range recs {
		k, ok := c.key(key.Group, g, &rec.Payment, buf[:0])
		if !ok || string(k) != key.Key {
			return state, false, errWrongEntity
		}
		before := NotCounted
		if counted != nil {
			before = counted[i]
		}
		if before > len(rec.Labels) {
			return state, false, fmt.Errorf("apply features: %s counted with %d labels, has %d", rec.TransactionID, before, len(rec.Labels))
		}
		at := rec.Payment.OccurredAt
		for _, f := range g.feats {
			if before != NotCounted && !countedAgain(rec, f, before) {
				continue
			}
			ev, ok := eventOf(rec, f)
			if !ok {
				continue
			}
			w := e.get(f)
			w.add(f, at, ev.v, ev.h, ev.distinct)
			w.seq = max(w.seq, rec.Seq)
			changed = true
		}
	}
	if !changed {
		return state, false, nil
	}
	// No name table is shared with the reader, so windows carry their
	// names in full (entity encoding version 1).
	return e.encode(nil, nil), true, nil
}

// countedAgain reports whether f may count rec, counted before with its
// first labels labels, now that it has more: f's filter reads labels and
// did not admit rec then (eventOf checks it admits rec now).
func countedAgain(rec *engine.Record, f *feature, labels int) bool {
	if labels == len(rec.Labels) || f.where == nil || !strings.Contains(f.def.Where, "labels") {
		return false
	}
	prev := *rec
	prev.Labels = rec.Labels[:labels]
	ok, err := f.where.Match(&prev)
	return err == nil && !ok
}

// SpentKey returns the key of the state holding p's daily spend; ok is
// false without a limits entity or when p lacks it.
func (c *Calculator) SpentKey(p *engine.Payment) (key StateKey, ok bool) {
	if c.spent == nil {
		return StateKey{}, false
	}
	var buf [160]byte
	k, ok := c.key(c.spentGroup, c.fs.groups[c.spentGroup], p, buf[:0])
	if !ok {
		return StateKey{}, false
	}
	return StateKey{Group: c.spentGroup, Key: string(k)}, true
}

// Spent returns what p's limits entity spent over the 24 hours before
// p.OccurredAt, in minor units of the base currency of the limits each
// payment was decided with, read from state, the state of SpentKey(p) (nil
// when there is none). Denied payments and payments decided without limits
// spend nothing. It is 0 without a limits entity.
func (c *Calculator) Spent(p *engine.Payment, state []byte) (float64, error) {
	if c.spent == nil || state == nil {
		return 0, nil
	}
	e, err := decodeEntity(state, nil)
	if err != nil {
		return 0, fmt.Errorf("read daily spend: %w", err)
	}
	if w := e.find(c.spent); w != nil {
		return w.value(c.spent, p.OccurredAt), nil
	}
	return 0, nil
}
