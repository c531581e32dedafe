package features

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
)

// memorySweepEvery is how many applied payments pass between sweeps that
// drop the windows of entities not seen within their window.
const memorySweepEvery = 1 << 16

// Memory computes the same features as a Store, with the same windows and
// buckets, entirely in memory and without Badger. It is what offline replay
// uses: feed it decided payments in time order with Apply, and Features
// then answers as the live store would have at that moment.
//
// Point in time: Features counts exactly the payments applied before the
// call, so a caller that applies payments in time order, each after
// deciding it, gives every payment the features of the earlier ones only.
// Payments applied out of time order are still counted by their own time,
// but a window's buckets are pruned relative to the newest payment applied.
//
// Every value is ready (there is no backfill). Memory holds one window per
// entity seen within its feature's window; windows of entities idle for
// longer are dropped periodically. It is safe for concurrent use.
type Memory struct {
	fs *featureSet

	mu      sync.Mutex
	windows map[string]*window
	newest  time.Time
	applied int
	keyBuf  []byte
}

var _ engine.FeatureSource = (*Memory)(nil)

// NewMemory checks and compiles defs (compile builds where filters; it may
// be nil when no definition has one) and returns an empty calculator.
func NewMemory(defs []Definition, compile FilterCompiler) (*Memory, error) {
	list, err := compileAll(defs, compile)
	if err != nil {
		return nil, err
	}
	return &Memory{fs: newFeatureSet(list), windows: make(map[string]*window)}, nil
}

// Names returns the feature names in definition order, as rules declare
// them in rules.Env.
func (m *Memory) Names() []string {
	out := make([]string, len(m.fs.list))
	for i, f := range m.fs.list {
		out[i] = f.def.Name
	}
	return out
}

// Features implements engine.FeatureSource: the value of every feature for
// p at p.OccurredAt over the payments applied so far. A feature whose
// entity is absent from p reads as its empty value (0, or -1 for
// first_seen and last_seen).
func (m *Memory) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	if err := ctx.Err(); err != nil {
		return dst, fmt.Errorf("read features: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.fs.list {
		fv := engine.FeatureValue{Name: f.def.Name, Value: emptyValue(f), Ready: true}
		key, ok := f.entityKey(p, m.keyBuf[:0])
		m.keyBuf = key
		if ok {
			if w := m.windows[string(key)]; w != nil {
				fv.Value = w.value(f, p.OccurredAt)
			}
		}
		dst = append(dst, fv)
	}
	return dst, nil
}

// Apply records one decided payment into every feature it matches, as
// Store.Commit does. rec.Outcome, rec.Score and rec.Labels are what where
// filters see.
func (m *Memory) Apply(rec *engine.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &rec.Payment
	for _, f := range m.fs.list {
		ev, ok := eventOf(rec, f)
		if !ok {
			continue
		}
		key, ok := f.entityKey(p, m.keyBuf[:0])
		m.keyBuf = key
		if !ok {
			continue
		}
		w := m.windows[string(key)]
		if w == nil {
			w = &window{}
			m.windows[string(key)] = w
		}
		w.add(f, p.OccurredAt, ev.v, ev.h, ev.distinct)
	}
	if p.OccurredAt.After(m.newest) {
		m.newest = p.OccurredAt
	}
	m.applied++
	if m.applied%memorySweepEvery == 0 {
		m.sweep()
	}
}

// Len returns how many entity windows are held, for tests and metrics.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.windows)
}

// sweep drops the windows that hold nothing inside their window ending at
// the newest payment applied.
func (m *Memory) sweep() {
	for k, w := range m.windows {
		f := m.fs.byKey(k)
		if f == nil {
			delete(m.windows, k)
			continue
		}
		w.prune(f, m.newest)
		if len(w.buckets) == 0 {
			delete(m.windows, k)
		}
	}
}
