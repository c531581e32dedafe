// Package features computes behavioural velocity features (counts, sums,
// distinct counts, first and last seen) per entity over sliding time
// windows, and keeps the decision history they are derived from.
//
// Windows live in memory in a sharded LRU cache and are flushed to Badger in
// batches; the decision log, written before a decision is acknowledged,
// doubles as the write-ahead log: on start-up every decision newer than the
// last flushed feature state is replayed into the windows.
package features

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/riskengine/risk/engine"
)

// Aggregate is how a feature summarises the events in its window.
type Aggregate string

// Aggregates. first_seen and last_seen read as the age in seconds of the
// first and last event in the window, and as -1 when there is none.
const (
	Count     Aggregate = "count"
	Sum       Aggregate = "sum"
	Min       Aggregate = "min"
	Max       Aggregate = "max"
	Avg       Aggregate = "avg"
	Distinct  Aggregate = "distinct"
	FirstSeen Aggregate = "first_seen"
	LastSeen  Aggregate = "last_seen"
)

// Window bounds.
const (
	MinWindow = time.Minute
	MaxWindow = 365 * 24 * time.Hour
	// MaxDefinitions bounds how many features may be defined.
	MaxDefinitions = 256
)

// Definition declares one feature as analysts write it.
type Definition struct {
	// Name is how rules read the feature: features.<name>.
	Name string `json:"name" yaml:"name"`
	// Entity is the payment path (or paths, for a composite key) the
	// feature is kept per: "card.fingerprint", ["account.id","merchant.id"].
	Entity Paths `json:"entity" yaml:"entity"`
	// Aggregate is what is computed over the window.
	Aggregate Aggregate `json:"aggregate" yaml:"aggregate"`
	// Field is the payment path aggregated by sum, min, max, avg and
	// distinct.
	Field string `json:"field,omitempty" yaml:"field,omitempty"`
	// Window is the sliding window length: "10m", "24h", "7d".
	Window string `json:"window" yaml:"window"`
	// Where optionally filters which decided payments count: an expression
	// over the payment, decision, score and labels.
	Where string `json:"where,omitempty" yaml:"where,omitempty"`
}

// Paths is one payment path or several; in YAML and JSON it is written as a
// string or a list of strings.
type Paths []string

// UnmarshalJSON accepts a string or a list of strings.
func (p *Paths) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = Paths{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("entity must be a path or a list of paths")
	}
	*p = many
	return nil
}

// UnmarshalYAML accepts a string or a list of strings.
func (p *Paths) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*p = Paths{one}
		return nil
	}
	var many []string
	if err := unmarshal(&many); err != nil {
		return fmt.Errorf("entity must be a path or a list of paths")
	}
	*p = many
	return nil
}

// MarshalYAML writes a single path as a plain string.
func (p Paths) MarshalYAML() (any, error) {
	if len(p) == 1 {
		return p[0], nil
	}
	return []string(p), nil
}

// Filter decides whether a decided payment counts towards a feature. It
// must be safe for concurrent use.
type Filter interface {
	Match(rec *engine.Record) (bool, error)
}

// FilterCompiler compiles a where expression into a Filter.
type FilterCompiler func(src string) (Filter, error)

// feature is a checked definition ready to use.
type feature struct {
	def    Definition
	window time.Duration
	bucket time.Duration
	where  Filter
	// hidden marks an internal feature (the limiter's daily spend): not
	// read by rules nor listed, but kept, flushed and replayed like others.
	hidden bool
	// amount, when set, replaces def.Field as the aggregated value.
	amount func(rec *engine.Record) (float64, bool)
	// spend indexes the entities with recent events of the limiter's
	// hidden spend feature (limits_spent.go); nil for every other feature.
	spend *spendIndex
	// spec names the entity spec (entitySpec of def.Entity).
	spec string
	// epoch numbers the feature's state: it changes whenever the state
	// must start empty (a new or changed definition, a backfill started
	// again), and windows of another epoch read as empty. Set before the
	// feature goes live and not changed after.
	epoch uint64
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// bucketLadder lists the bucket sizes a window may use; each window takes
// the largest that is at most 1/60 of it.
var bucketLadder = []time.Duration{
	24 * time.Hour, 12 * time.Hour, 6 * time.Hour, 3 * time.Hour, 2 * time.Hour, time.Hour,
	30 * time.Minute, 15 * time.Minute, 10 * time.Minute, 5 * time.Minute, 2 * time.Minute, time.Minute,
	30 * time.Second, 15 * time.Second, 10 * time.Second, 5 * time.Second, 2 * time.Second, time.Second,
}

// BucketSize returns the bucket size used for a window: the largest of 1s,
// 2s, 5s, 10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d
// that is at most window/60. A sliding window is exact to within one bucket.
func BucketSize(window time.Duration) time.Duration {
	for _, b := range bucketLadder {
		if b*60 <= window {
			return b
		}
	}
	return time.Second
}

// ParseWindow parses a window length: a Go duration ("90m", "24h") or a
// whole number of days ("7d").
func ParseWindow(s string) (time.Duration, error) {
	d, err := engine.ParseLength(s)
	if err != nil {
		return 0, err
	}
	if d < MinWindow || d > MaxWindow {
		return 0, fmt.Errorf("window %q: must be between 1m and 365d", s)
	}
	return d, nil
}

// Check validates d and compiles its filter with compile (which may be nil
// when d has no where).
func (d Definition) compile(compile FilterCompiler) (*feature, error) {
	bad := func(field, msg string) error { return engine.Invalid(field, "invalid_feature", msg) }
	if !namePattern.MatchString(d.Name) {
		return nil, bad("name", "name must be 1 to 63 lowercase letters, digits or '_', starting with a letter")
	}
	if len(d.Entity) == 0 || len(d.Entity) > 4 {
		return nil, bad("entity", "entity must name 1 to 4 payment paths")
	}
	for _, p := range d.Entity {
		if !engine.ValidPath(p) {
			return nil, bad("entity", fmt.Sprintf("unknown payment path %q", p))
		}
	}
	switch d.Aggregate {
	case Count, FirstSeen, LastSeen:
		if d.Field != "" {
			return nil, bad("field", fmt.Sprintf("%s takes no field", d.Aggregate))
		}
	case Sum, Min, Max, Avg, Distinct:
		if d.Field == "" {
			return nil, bad("field", fmt.Sprintf("%s needs a field", d.Aggregate))
		}
		if !engine.ValidPath(d.Field) {
			return nil, bad("field", fmt.Sprintf("unknown payment path %q", d.Field))
		}
	default:
		return nil, bad("aggregate", fmt.Sprintf("unknown aggregate %q: use count, sum, min, max, avg, distinct, first_seen or last_seen", d.Aggregate))
	}
	w, err := ParseWindow(d.Window)
	if err != nil {
		return nil, bad("window", err.Error())
	}
	f := &feature{def: d, window: w, bucket: BucketSize(w), spec: entitySpec(d.Entity)}
	if d.Where != "" {
		if compile == nil {
			return nil, bad("where", "where filters are not available")
		}
		if f.where, err = compile(d.Where); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Validate checks defs as a whole: each definition, and unique names.
func Validate(defs []Definition, compile FilterCompiler) error {
	_, err := compileAll(defs, compile)
	return err
}

func compileAll(defs []Definition, compile FilterCompiler) ([]*feature, error) {
	if len(defs) > MaxDefinitions {
		return nil, engine.Invalid("features", "too_many", fmt.Sprintf("at most %d features may be defined", MaxDefinitions))
	}
	out := make([]*feature, 0, len(defs))
	seen := map[string]bool{}
	for _, d := range defs {
		f, err := d.compile(compile)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", d.Name, err)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("feature %q: %w", d.Name, engine.Invalid("name", "duplicate", "duplicate feature name"))
		}
		seen[d.Name] = true
		out = append(out, f)
	}
	return out, nil
}

// entityKey returns the feature's own key for p (its name, then the entity
// values), or ok false when any entity path is absent. Storage and the cache
// key by entity spec instead (entityKey in entity.go); this key names one
// feature's entity in indexes and the offline Memory store.
func (f *feature) entityKey(p *engine.Payment, buf []byte) ([]byte, bool) {
	return entityKey(f.def.Name, f.def.Entity, p, buf)
}

// appendValue appends a canonical text form of a field value.
func appendValue(buf []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return append(buf, v...)
	case float64:
		return strconv.AppendFloat(buf, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(buf, v)
	case time.Time:
		return strconv.AppendInt(buf, v.UnixNano(), 10)
	}
	return buf
}
