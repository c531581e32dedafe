package redisstate

import (
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// Features implements engine.FeatureSource in one pipelined round trip:
// the state of every entity p touches, and the built marks of the groups.
// Values exclude p itself when read before p is recorded, as the engine
// does.
//
// A value is not ready when its group is not built (see the package doc),
// when its state cannot be read (the error wraps engine.ErrUnavailable, or
// ctx's error when ctx ended first), or when its state does not decode
// (engine.ErrCorrupt); it then holds its empty value. The call takes at
// most Options.ReadTimeout.
func (s *Store) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	l := s.live.Load()
	var kbuf [8]features.StateKey
	keys := l.c.Keys(p, kbuf[:0])

	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	pipe := s.client.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(rctx, s.stateKey(k))
	}
	var built *redis.SliceCmd
	if len(l.ids) > 0 {
		built = pipe.HMGet(rctx, s.builtKey, l.ids...)
	}
	_, _ = pipe.Exec(rctx) // each command's error is read below

	var ioErr error
	var corrupt []error
	unread := make([]bool, len(l.ids))
	states := make([][]byte, len(keys))
	for i, g := range gets {
		v, err := g.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			unread[keys[i].Group] = true
			if ioErr == nil {
				ioErr = failed(ctx, "read feature state", err)
			}
		default:
			val, err := decodeValue(v)
			if err != nil {
				unread[keys[i].Group] = true
				corrupt = append(corrupt, err)
				continue
			}
			states[i] = val.state
		}
	}
	base := len(dst)
	dst, err := l.c.Values(p, keys, states, dst)
	vals := dst[base:]
	ready, berr := s.builtFlags(ctx, l, built)
	if ioErr == nil && berr == nil && len(corrupt) == 0 {
		s.keep(l, p, keys, gets, ready, states)
	}
	if berr != nil && ioErr == nil {
		ioErr = berr
	}
	all := berr == nil
	for gi := range l.ids {
		if unread[gi] || !ready[gi] {
			l.c.MarkNotReady(gi, vals)
		}
		all = all && ready[gi]
	}
	if berr == nil {
		s.noteReady(l, all)
	}
	return dst, errors.Join(append(corrupt, ioErr, err)...)
}

// builtFlags reads the answer of an HMGET of the built marks of l's groups
// (nil when l has none): whether each group is built.
func (s *Store) builtFlags(parent context.Context, l *live, cmd *redis.SliceCmd) ([]bool, error) {
	ready := make([]bool, len(l.ids))
	if cmd == nil {
		return ready, nil
	}
	marks, err := cmd.Result()
	if err != nil {
		return ready, failed(parent, "read built marks", err)
	}
	for i, m := range marks {
		ready[i] = m != nil
	}
	return ready, nil
}

// noteReady records whether l's groups were all built, if l is still live.
func (s *Store) noteReady(l *live, all bool) {
	if s.live.Load() == l {
		s.ready.Store(all)
	}
}

// Pending returns the IDs of the live groups Redis holds no built state
// for: the groups a Rebuild must build. It updates Ready.
func (s *Store) Pending(ctx context.Context) ([]string, error) {
	l := s.live.Load()
	idx, err := s.pending(ctx, l)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(idx))
	for i, gi := range idx {
		out[i] = l.ids[gi]
	}
	return out, nil
}

// pending returns the indexes of l's groups not built, and notes Ready.
func (s *Store) pending(ctx context.Context, l *live) ([]int, error) {
	if len(l.ids) == 0 {
		s.noteReady(l, true)
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	ready, err := s.builtFlags(ctx, l, s.client.HMGet(rctx, s.builtKey, l.ids...))
	if err != nil {
		return nil, err
	}
	var out []int
	for gi, ok := range ready {
		if !ok {
			out = append(out, gi)
		}
	}
	s.noteReady(l, len(out) == 0)
	return out, nil
}

// Empty reports whether Redis lacks a built state for some group of the
// live definitions: true on a new or flushed Redis, or after a definition
// changed. A node that finds it true runs Rebuild; meanwhile the values of
// the groups not built read not ready.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	idx, err := s.pending(ctx, s.live.Load())
	return len(idx) > 0, err
}

// keep stashes what Features read for p, for its Spent and Record.
func (s *Store) keep(l *live, p *engine.Payment, keys []features.StateKey, gets []*redis.StringCmd, built []bool, states [][]byte) {
	if p.TransactionID == "" {
		return
	}
	r := &read{l: l, p: *p, keys: slices.Clone(keys), raws: make([][]byte, len(keys)), built: built}
	for i, g := range gets {
		if v, err := g.Bytes(); err == nil {
			r.raws[i] = v // go-redis hands over its own copy
		}
	}
	if k, ok := l.c.SpentKey(p); ok {
		for i, x := range keys {
			if x == k {
				if v, err := l.c.Spent(p, states[i]); err == nil {
					r.spent, r.spentOK = v, true
				}
				break
			}
		}
	}
	s.stash.Add(p.TransactionID, r)
}

// Spent returns what p's limits entity spent over the 24 hours before
// p.OccurredAt, in minor units of the limits' base currency (see
// features.Calculator.Spent), in one read — none when the decision's
// Features just read it. It is 0 without Options.LimitsEntity or when p
// lacks the entity.
func (s *Store) Spent(ctx context.Context, p *engine.Payment) (float64, error) {
	l := s.live.Load()
	if r, ok := s.stashed(l, p); ok && r.spentOK {
		return r.spent, nil
	}
	c := l.c
	k, ok := c.SpentKey(p)
	if !ok {
		return 0, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	v, err := s.client.Get(rctx, s.stateKey(k)).Bytes()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, failed(ctx, "read daily spend", err)
	}
	val, err := decodeValue(v)
	if err != nil {
		return 0, err
	}
	return c.Spent(p, val.state)
}
