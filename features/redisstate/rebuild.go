package redisstate

import (
	"context"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
)

// History is the decision log a Rebuild replays: PostgreSQL's in cluster
// mode, a features.Store's on one node.
type History interface {
	// ScanRecords calls fn for every stored decision with sequence number
	// at or after from, in commit order, until fn returns an error.
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

// committedLog is a History that can say the newest sequence number
// committed, held back from scans or not (postgres.Decisions).
type committedLog interface {
	CommittedSeq(ctx context.Context) (uint64, error)
}

// heldBackPoll is how often a Rebuild reads the log again while it holds
// back decisions committed before the groups were marked built.
const heldBackPoll = 50 * time.Millisecond

// rebuildBatch is how many decisions a Rebuild counts per pair of round
// trips.
const rebuildBatch = 512

// Rebuild builds the state of every live group Redis holds no built state
// for (see Pending) from history, then marks those groups built, which
// makes their values ready on every node. Only decisions within a group's
// window of now (Options.Now) are counted. progress, when not nil, is told
// how many decisions were scanned after each batch.
//
// Each state keeps the highest sequence number a Rebuild counted into it,
// and every Rebuild skips the decisions at or below it, so a Rebuild may
// run on another node meanwhile: each decision is counted once whichever
// writes it first. Live Records on any node may run meanwhile too: a
// decision they counted is skipped while its state's ring holds it (its
// entity's last 64 decisions; see the package doc). A group already built
// is left alone; a Rebuild that fails leaves its groups not built, and the
// next one resumes them (what was counted stays counted). An entity whose state does not decode is logged and left as
// it is (see write); it does not stop the rebuild.
//
// It misses only a decision that a node running other definitions
// records, into that node's own keys, after the scan passed it: run a
// Rebuild for a definition change once every node has the new
// definitions, or again after they all do (it is cheap to repeat: already
// counted decisions are skipped).
func (s *Store) Rebuild(ctx context.Context, history History, progress func(done int)) error {
	l := s.live.Load()
	pend, err := s.pending(ctx, l)
	if err != nil {
		return fmt.Errorf("rebuild feature state: %w", err)
	}
	if len(pend) == 0 {
		return nil
	}
	now := s.opts.Now()
	from := make([]time.Time, len(l.ids)) // the oldest event each pending group counts
	building := make([]bool, len(l.ids))
	oldest := now
	for _, gi := range pend {
		building[gi] = true
		from[gi] = now.Add(-l.keep[gi])
		if from[gi].Before(oldest) {
			oldest = from[gi]
		}
	}

	batch := make([]*engine.Record, 0, rebuildBatch)
	done, corrupted := 0, 0
	flush := func() error {
		byKey := map[string]*job{}
		var jobs []*job
		for _, rec := range batch {
			for _, k := range l.c.Keys(&rec.Payment, nil) {
				if !building[k.Group] || rec.Payment.OccurredAt.Before(from[k.Group]) {
					continue
				}
				j := byKey[k.Key]
				if j == nil {
					j = &job{key: k, skey: s.stateKey(k), rebuild: true}
					byKey[k.Key] = j
					jobs = append(jobs, j)
				}
				j.recs = append(j.recs, rec)
				j.through = max(j.through, rec.Seq)
			}
		}
		batch = batch[:0]
		wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
		defer cancel()
		corrupt, err := s.write(wctx, ctx, l, jobs, nil)
		if err != nil {
			return err
		}
		for _, err := range corrupt {
			// Not fatal: the entity reads as corrupt, never as a silent
			// zero, and every other one is built.
			s.opts.Log.Error("rebuild feature state: entity left as it is", "err", err)
			corrupted++
		}
		if progress != nil {
			progress(done)
		}
		return nil
	}
	var last uint64 // the highest sequence number scanned
	scan := func(from uint64) error {
		err := history.ScanRecords(ctx, from, func(rec *engine.Record) error {
			done++
			last = max(last, rec.Seq)
			if rec.TransactionID == "" || rec.Payment.OccurredAt.Before(oldest) {
				return nil
			}
			batch = append(batch, rec)
			if len(batch) == rebuildBatch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return fmt.Errorf("rebuild feature state: %w", err)
		}
		return nil
	}
	if err := scan(1); err != nil {
		return err
	}

	marks := make([]any, 0, 2*len(pend))
	for _, gi := range pend {
		marks = append(marks, l.ids[gi], now.Unix())
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	if err := s.client.HSet(wctx, s.builtKey, marks...).Err(); err != nil {
		return fmt.Errorf("rebuild feature state: %w", failed(ctx, "mark built", err))
	}
	// Every decision committed by now whose live write skipped these
	// groups must be counted by the passes below. A log may hold back
	// committed decisions from a scan for a while (PostgreSQL's does while
	// an older transaction is open on the server): read on until the scan
	// has passed the newest one committed at the mark.
	var target uint64
	if c, ok := history.(committedLog); ok {
		if target, err = c.CommittedSeq(ctx); err != nil {
			return fmt.Errorf("rebuild feature state: %w", err)
		}
	}
	// Live writes skipped these groups until now: count what was
	// committed after the scan passed. What live writes count from here on
	// and this pass meets too is in the entity's ring, counted once.
	if err := scan(last + 1); err != nil {
		return err
	}
	waitStart, warned := time.Now(), false
	for last < target {
		if !warned && time.Since(waitStart) > 10*time.Second {
			warned = true
			s.opts.Log.Warn("rebuild feature state: waiting for committed decisions an open transaction on the database holds back",
				"scanned_through", last, "committed_through", target)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rebuild feature state: %w", ctx.Err())
		case <-time.After(heldBackPoll):
		}
		if err := scan(last + 1); err != nil {
			return err
		}
	}
	if _, err := s.pending(ctx, l); err != nil {
		return fmt.Errorf("rebuild feature state: %w", err)
	}
	if corrupted > 0 {
		s.opts.Log.Warn("feature state rebuilt but for corrupt entities", "entities", corrupted)
	}
	return nil
}
