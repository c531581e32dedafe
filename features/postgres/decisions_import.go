package postgres

// Importing decisions made elsewhere (a single node's log, `risk cluster
// import`): a batch keeps its order and its records' ids, takes fresh
// sequence numbers, and is idempotent by transaction id like Commit.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riskengine/risk/engine"
)

// ImportCounts says what an Import did with its records.
type ImportCounts struct {
	// Imported records were new and are stored now, with a sequence
	// number of this log (set in their Seq).
	Imported int
	// Present records were stored already (same transaction and decision
	// id): an earlier import of the same record.
	Present int
	// Conflicts are transaction ids this log holds with another decision
	// id: a decision made elsewhere for the same transaction. Not written.
	Conflicts []string
	// Labels is how many labels were added to records new or present.
	Labels int
}

// Import stores recs in one transaction, in their order, each under its
// own decision id and with the next sequence numbers of this log, and then
// adds every label of theirs the stored record lacks. A transaction id
// already stored is not written again (Present or Conflicts), so running
// an import twice stores nothing twice. It does not go through the
// committer, so it may run beside Commit on the same Decisions; it writes
// at most one batch, the caller sizes it (DefaultMaxBatch is a good size).
func (d *Decisions) Import(ctx context.Context, recs []*engine.Record) (ImportCounts, error) {
	var out ImportCounts
	if len(recs) == 0 {
		return out, nil
	}
	batch := make([]*commitReq, len(recs))
	months := map[time.Time]bool{}
	for i, rec := range recs {
		doc, err := encodeRecord(rec)
		if err != nil {
			return out, fmt.Errorf("import decision %q: %w", rec.ID, err)
		}
		if err := checkStorable(rec, doc); err != nil {
			return out, fmt.Errorf("import decision %q: %w", rec.ID, err)
		}
		batch[i] = &commitReq{rec: rec, doc: doc}
		months[monthOf(rec.EvaluatedAt)] = true
	}
	for m := range months {
		if err := d.ensurePartition(ctx, m); err != nil {
			// The default partition takes the rows.
			d.o.Log.Warn("create decision partition", "month", m.Format("2006-01"), "err", err)
		}
	}
	err := d.insertBatch(ctx, batch)
	if err != nil && (pgconn.SafeToRetry(err) || isPartitionViolation(err)) {
		err = d.insertBatch(ctx, batch)
	}
	if err != nil {
		return out, fmt.Errorf("import decisions: %w", err)
	}
	for _, r := range batch {
		stored := r.rec
		switch {
		case r.dup == nil:
			out.Imported++
		case r.dup.ID != r.rec.ID:
			out.Conflicts = append(out.Conflicts, r.rec.TransactionID)
			continue
		default:
			out.Present++
			stored = r.dup
		}
		for _, l := range r.rec.Labels {
			if r.dup != nil && stored.HasLabel(l.Label) {
				continue
			}
			_, added, err := d.AddLabel(ctx, r.rec.ID, l)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return out, fmt.Errorf("import labels: %w", err)
			}
			if added {
				out.Labels++
			}
		}
	}
	return out, nil
}
