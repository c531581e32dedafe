package postgres

// Reading decisions back: by transaction id, by decision id, in commit
// order, and labelling them.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riskengine/risk/engine"
)

// querier is what reads need of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// recordColumns are the columns decodeRow reads, in its order.
const recordColumns = "seq, record, labels"

// decodeRow decodes a row of recordColumns.
func decodeRow(row pgx.Row) (*engine.Record, error) {
	var (
		seq         int64
		doc, labels []byte
	)
	if err := row.Scan(&seq, &doc, &labels); err != nil {
		return nil, err
	}
	return decodeRecord(seq, doc, labels)
}

func collectRecords(rows pgx.Rows) ([]*engine.Record, error) {
	defer rows.Close()
	var out []*engine.Record
	for rows.Next() {
		rec, err := decodeRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// collectScanned is collectRecords for ScanRecords: documents decoded
// by an earlier scan are taken from d.recent, and what it decodes is kept
// there.
func (d *Decisions) collectScanned(rows pgx.Rows) ([]*engine.Record, error) {
	defer rows.Close()
	var out []*engine.Record
	for rows.Next() {
		var (
			seq         int64
			doc, labels []byte
		)
		if err := rows.Scan(&seq, &doc, &labels); err != nil {
			return nil, err
		}
		ls, err := decodeLabels(labels)
		if err != nil {
			return nil, fmt.Errorf("decode labels of seq %d: %w", seq, err)
		}
		rec, ok := d.recent.get(uint64(seq), ls)
		if !ok {
			if rec, err = decodeRecord(seq, doc, nil); err != nil {
				return nil, err
			}
			d.recent.add(rec)
			rec.Labels = ls
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// Lookup implements engine.DecisionStore: the record of a transaction id,
// or an error wrapping ErrNotFound (and so engine.ErrNotFound).
func (d *Decisions) Lookup(ctx context.Context, transactionID string) (*engine.Record, error) {
	rec, err := decodeRow(d.db.Pool.QueryRow(ctx,
		"SELECT "+recordColumns+" FROM decisions WHERE transaction_id = $1 LIMIT 1", transactionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("transaction %q: %w", transactionID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up transaction %q: %w", transactionID, err)
	}
	return rec, nil
}

// Get returns the record of a decision id, or an error wrapping
// ErrNotFound.
func (d *Decisions) Get(ctx context.Context, decisionID string) (*engine.Record, error) {
	rec, err := decodeRow(d.db.Pool.QueryRow(ctx,
		"SELECT "+recordColumns+" FROM decisions WHERE decision_id = $1 LIMIT 1", decisionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("decision %q: %w", decisionID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get decision %q: %w", decisionID, err)
	}
	return rec, nil
}

// Count returns the number of stored decisions.
func (d *Decisions) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := d.db.Pool.QueryRow(ctx, "SELECT count(*) FROM decisions").Scan(&n); err != nil {
		return 0, fmt.Errorf("count decisions: %w", err)
	}
	return n, nil
}

// SettledSeq returns the greatest sequence number below which no decision
// can still appear: every transaction that could commit a lower one has
// ended (see ScanRecords). A new reader of the log that starts at
// SettledSeq+1 misses nothing committed after it started; one starting
// after the greatest stored seq could miss a lower seq still being
// committed on another node. 0 when nothing has settled.
func (d *Decisions) SettledSeq(ctx context.Context) (uint64, error) {
	var n int64
	err := d.db.Pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM decisions
		WHERE xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("settled decision seq: %w", err)
	}
	return uint64(n), nil
}

// CommittedSeq returns the highest sequence number of a committed
// decision, whether or not ScanRecords still holds it back (0 for an
// empty log).
func (d *Decisions) CommittedSeq(ctx context.Context) (uint64, error) {
	var n int64
	if err := d.db.Pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM decisions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("committed decision seq: %w", err)
	}
	return uint64(n), nil
}

// recordPage is how many records ScanRecords reads per query.
const recordPage = 500

// ScanRecords calls fn for every stored decision with sequence number >=
// from, in sequence order, until fn returns an error (returned as is) or
// ctx ends.
//
// Transactions on several nodes commit in any order, so seq 11 may be
// visible while seq 10 is still being written. A scan stops before the
// first record a transaction still open could precede: it returns only
// rows written by transactions older than every open one
// (xid < pg_snapshot_xmin). A caller keeping the last seq it saw as its
// cursor so never skips a record; what is held back is returned by a later
// scan.
func (d *Decisions) ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error {
	for {
		rows, err := d.db.Pool.Query(ctx, "SELECT "+recordColumns+` FROM decisions
			WHERE seq >= $1 AND xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
			ORDER BY seq LIMIT $2`, int64(from), recordPage)
		if err != nil {
			return fmt.Errorf("scan decisions: %w", err)
		}
		page, err := d.collectScanned(rows)
		if err != nil {
			return fmt.Errorf("scan decisions: %w", err)
		}
		for _, rec := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(rec); err != nil {
				return err
			}
			from = rec.Seq + 1
		}
		if len(page) < recordPage {
			return nil
		}
	}
}

// AddLabel implements engine.Labeler: it attaches l to the decision under
// a row lock, so concurrent labels of one decision from any node are all
// kept. added is false, and nothing is written, when the decision already
// carries a label of that name. An unknown decision wraps ErrNotFound.
func (d *Decisions) AddLabel(ctx context.Context, decisionID string, l engine.Label) (rec *engine.Record, added bool, err error) {
	err = pgx.BeginFunc(ctx, d.db.Pool, func(tx pgx.Tx) error {
		var (
			seq         int64
			doc, labels []byte
			at          time.Time // the evaluated_at column: prunes the update to one partition
		)
		err := tx.QueryRow(ctx, `SELECT seq, record, labels, evaluated_at FROM decisions
			WHERE decision_id = $1 LIMIT 1 FOR UPDATE`, decisionID).Scan(&seq, &doc, &labels, &at)
		if err != nil {
			return err
		}
		if rec, err = decodeRecord(seq, doc, labels); err != nil {
			return err
		}
		if rec.HasLabel(l.Label) {
			return nil
		}
		rec.Labels = append(rec.Labels, l)
		b, err := encodeLabels(rec.Labels)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE decisions SET labels = $1::jsonb WHERE decision_id = $2 AND evaluated_at = $3",
			string(b), decisionID, at)
		added = err == nil
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("decision %q: %w", decisionID, ErrNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("label decision %q: %w", decisionID, err)
	}
	return rec, added, nil
}
