package redisstate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// ErrContended is Record's error when other nodes kept changing an
// entity's state between its reads and writes for Options.MaxAttempts
// attempts. The decision is not counted; a retry of Record may count it.
var ErrContended = errors.New("feature state contended")

// casScript writes one entity's new state if its header (format and
// version) is still what the writer read. What the state counted travels
// inside it (see value), so the header covers that too.
//
//	KEYS[1]  the state
//	ARGV[1]  the header read: 8 bytes, or empty when there was no state
//	ARGV[2]  the new state
//	ARGV[3]  the state's lifetime, milliseconds
//
// It answers 0 when written and 1, writing nothing, when another writer
// changed the state since.
var casScript = redis.NewScript(`
if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then
  return 1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 0
`)

// Answers of casScript.
const (
	casWritten = 0
	casChanged = 1
)

// job is the records still to be counted into one entity's state.
type job struct {
	key  features.StateKey
	skey string
	recs []*engine.Record
	// rebuild is set for a Rebuild's job: through is then the highest
	// sequence number of the entity's decisions the Rebuild has scanned
	// once this job is written.
	rebuild bool
	through uint64
}

// Record counts rec, a decision durably stored, into every entity state it
// touches. It is idempotent per transaction id within the bounds of each
// state's ring (the package doc, "Counted transactions"): a transaction
// recorded again (a retry, on this node or another) within the entity's
// last 64 decisions and 24 hours is counted once, so a node may repair a
// count another died before making by recording again. Beyond them it is
// counted again.
//
// Labels: record the decision again once a label is added to it (with its
// labels as stored), once per label; what the new label adds to features
// whose where reads labels is counted then, once, as a Store counts it,
// however long after the decision.
//
// Each entity takes an optimistic read, apply and compare-and-set; all
// entities go in one pipeline per step, so an uncontended Record costs two
// round trips, and one that finds everything counted one. A state changed
// by another node between read and write is read again, up to
// Options.MaxAttempts times (then ErrContended). The call takes at most
// Options.WriteTimeout; a Redis failure wraps engine.ErrUnavailable.
func (s *Store) Record(ctx context.Context, rec *engine.Record) error {
	if rec.TransactionID == "" {
		return errors.New("record features: decision has no transaction id")
	}
	l := s.live.Load()
	var kbuf [8]features.StateKey
	keys := l.c.Keys(&rec.Payment, kbuf[:0])
	if len(keys) == 0 {
		return nil
	}
	jobs := make([]*job, len(keys))
	stripes := make([]int, 0, len(keys))
	for i, k := range keys {
		jobs[i] = &job{key: k, skey: s.stateKey(k), recs: []*engine.Record{rec}}
		stripes = append(stripes, s.stripe(jobs[i].skey))
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	// In stripe order, so two Records never wait on each other.
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		select {
		case s.stripes[i] <- struct{}{}:
			defer func() { <-s.stripes[i] }()
		case <-wctx.Done():
			return fmt.Errorf("record features of %s: %w", rec.TransactionID, failed(ctx, "wait for this node's other writes", wctx.Err()))
		}
	}
	first, _ := s.stashed(l, &rec.Payment)
	s.stash.Remove(rec.TransactionID)
	if corrupt, err := s.write(wctx, ctx, l, jobs, first); err != nil || len(corrupt) > 0 {
		return fmt.Errorf("record features of %s: %w", rec.TransactionID, errors.Join(append(corrupt, err)...))
	}
	return nil
}

// write counts each job's records into its state, once per transaction,
// retrying what other writers changed meanwhile. ctx bounds it; parent is
// the caller's context, which tells its end from a Redis timeout.
//
// A state that does not decode is left as it is: nothing can tell what it
// held. Its values read not ready (engine.ErrCorrupt) until it expires,
// the group's Keep plus Options.Margin after its last good write. Its
// error is returned in corrupt, once the other states are written; err is
// any other failure.
//
// first, when not nil, is what the decision's Features read: the first
// attempt starts from it instead of reading again (a state changed since
// fails the compare-and-set and is read on the next attempt).
func (s *Store) write(ctx, parent context.Context, l *live, jobs []*job, first *read) (corrupt []error, err error) {
	for attempt := 1; len(jobs) > 0; attempt++ {
		if attempt > s.opts.MaxAttempts {
			return corrupt, fmt.Errorf("%d entities after %d attempts: %w", len(jobs), s.opts.MaxAttempts, ErrContended)
		}
		if attempt > 2 {
			if err := backoff(ctx, attempt); err != nil {
				return corrupt, failed(parent, "write feature state", err)
			}
		}
		jobs, corrupt, err = s.writeOnce(ctx, parent, l, jobs, corrupt, first)
		first = nil
		if err != nil {
			return corrupt, err
		}
	}
	return corrupt, nil
}

// backoff waits a random while growing with attempt, up to 20ms, so
// writers racing for one entity spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// writeOnce makes one attempt at jobs: reads their states in one
// pipeline, applies what of the records is not counted yet, and writes the
// states that changed in another. It returns the jobs left to retry, and
// appends to corrupt the errors of the states that do not decode, whose
// jobs it drops.
func (s *Store) writeOnce(ctx, parent context.Context, l *live, jobs []*job, corrupt []error, first *read) (left []*job, _ []error, err error) {
	if raws, ok := first.reuse(jobs); ok {
		return s.apply(ctx, parent, l, jobs, corrupt, raws, nil)
	}
	pipe := s.client.Pipeline()
	gets := make([]*redis.StringCmd, len(jobs))
	for i, j := range jobs {
		gets[i] = pipe.Get(ctx, j.skey)
	}
	// A live write leaves a group that is not built to the rebuild that
	// builds it (it counts the whole log, and catches up after marking the
	// group built): counting it live too could count a decision twice once
	// the entity's ring has forgotten it.
	var built *redis.SliceCmd
	if len(l.ids) > 0 && !jobs[0].rebuild {
		built = pipe.HMGet(ctx, s.builtKey, l.ids...)
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	isBuilt, err := s.builtFlags(parent, l, built)
	if err != nil {
		return nil, corrupt, err
	}
	raws := make([][]byte, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		if built != nil && !isBuilt[j.key.Group] {
			errs[i] = errNotBuilt
			continue
		}
		raws[i], errs[i] = gets[i].Bytes()
	}
	return s.apply(ctx, parent, l, jobs, corrupt, raws, errs)
}

// errNotBuilt marks a job whose group is not built: apply skips it.
var errNotBuilt = errors.New("group not built")

// apply counts the jobs' records into the states read (raws; errs[i]
// is the read's error, redis.Nil or a nil raw for no state, errNotBuilt
// to skip the job) and writes the states that changed in one pipeline of
// compare-and-set scripts. It returns the jobs left to retry.
func (s *Store) apply(ctx, parent context.Context, l *live, jobs []*job, corrupt []error, raws [][]byte, errs []error) (left []*job, _ []error, err error) {
	type cas struct {
		j    *job
		args []any
	}
	now := s.opts.Now()
	writes := make([]cas, 0, len(jobs))
	for i, j := range jobs {
		raw := raws[i]
		var err error
		if errs != nil {
			err = errs[i]
		}
		if err == nil && raw == nil {
			err = redis.Nil
		}
		if errors.Is(err, errNotBuilt) {
			continue
		}
		var val value
		var read any = "" // no state yet
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, corrupt, failed(parent, "read feature state", err)
		default:
			if val, err = decodeValue(raw); err != nil {
				corrupt = append(corrupt, err)
				continue
			}
			read = raw[:versionLen]
		}
		// Keep the records with something left to count, and what of
		// each is counted already.
		var recs []*engine.Record
		var counts []int
		for _, rec := range j.recs {
			n := countedBefore(&val, rec, j.rebuild)
			if n >= len(rec.Labels) {
				continue // counted, with every label it has
			}
			recs = append(recs, rec)
			counts = append(counts, n)
		}
		j.recs = recs
		if len(recs) == 0 {
			continue
		}
		next, changed, err := l.c.ApplyCounted(j.key, val.state, recs, counts)
		if errors.Is(err, engine.ErrCorrupt) {
			corrupt = append(corrupt, err)
			continue
		}
		if err != nil {
			return nil, corrupt, err
		}
		if !changed {
			continue // no feature counts these records: nothing to write
		}
		val.state = next
		for _, rec := range recs {
			val.note(txHash(rec.TransactionID), len(rec.Labels), now)
		}
		val.trim(now)
		if j.rebuild {
			val.rebuilt = max(val.rebuilt, j.through)
		}
		ttl := strconv.FormatInt((l.keep[j.key.Group] + s.opts.Margin).Milliseconds(), 10)
		enc := val.encode(make([]byte, 0, versionLen+16+len(val.ring)*16+len(next)))
		writes = append(writes, cas{j: j, args: []any{read, enc, ttl}})
	}
	if len(writes) == 0 {
		return nil, corrupt, nil
	}
	run := func(eval func(p redis.Pipeliner, w cas) *redis.Cmd) []*redis.Cmd {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(writes))
		for i, w := range writes {
			cmds[i] = eval(pipe, w)
		}
		_, _ = pipe.Exec(ctx)
		return cmds
	}
	cmds := run(func(p redis.Pipeliner, w cas) *redis.Cmd {
		return casScript.EvalSha(ctx, p, []string{w.j.skey}, w.args...)
	})
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			// A server that has not seen the script (new, restarted or
			// failed over) takes it whole. A write that went through
			// with the first try is refused now (its version changed)
			// and read again.
			cmds = run(func(p redis.Pipeliner, w cas) *redis.Cmd {
				return casScript.Eval(ctx, p, []string{w.j.skey}, w.args...)
			})
			break
		}
	}
	for i, c := range cmds {
		res, err := c.Int64()
		if err != nil {
			return nil, corrupt, failed(parent, "write feature state", err)
		}
		switch res {
		case casWritten:
		case casChanged:
			left = append(left, writes[i].j)
		default:
			return nil, corrupt, failed(parent, "write feature state", fmt.Errorf("unexpected answer %d", res))
		}
	}
	return left, corrupt, nil
}

// countedBefore returns how many labels rec had when val counted it, or
// features.NotCounted. The ring answers for the transactions it holds.
// For one it does not hold:
//   - a Rebuild's record at or below the state's rebuilt sequence number
//     was counted by a Rebuild, whole;
//   - on the live path, a labelled record whose state's ring dropped
//     entries is taken as counted before its newest label: it is a label
//     recorded long after its decision, which AddLabel records once per
//     label. Counting it whole would count the decision twice;
//   - anything else was not counted.
func countedBefore(val *value, rec *engine.Record, rebuild bool) int {
	if c, ok := val.find(txHash(rec.TransactionID)); ok {
		return c.labels
	}
	switch {
	case rebuild:
		if rec.Seq != 0 && rec.Seq <= val.rebuilt {
			return len(rec.Labels)
		}
	case val.flags&flagDropped != 0 && len(rec.Labels) > 0:
		return len(rec.Labels) - 1
	}
	return features.NotCounted
}
