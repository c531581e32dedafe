package postgres

// One group-commit transaction: draw the sequence numbers, claim the
// transaction ids in decision_txids, answer the ids already claimed with
// their stored records and insert the rest.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riskengine/risk/engine"
)

// insertBatch writes batch in one transaction. On success every commit has
// either rec.Seq set or dup set; on error nothing was written.
func (d *Decisions) insertBatch(ctx context.Context, batch []*commitReq) error {
	// Two commits of one transaction id in one batch: the first is the
	// candidate, the later ones are its duplicates whatever becomes of it.
	first := make(map[string]*commitReq, len(batch))
	fresh := make([]*commitReq, 0, len(batch))
	var twins []*commitReq
	for _, r := range batch {
		r.dup = nil
		if _, ok := first[r.rec.TransactionID]; ok {
			twins = append(twins, r)
			continue
		}
		first[r.rec.TransactionID] = r
		fresh = append(fresh, r)
	}

	tx, err := d.db.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// The sequence numbers first: draw_decision_seqs also gives the
	// transaction its xid, which must happen under its lock (see the
	// migration). A number drawn for a duplicate is left unused.
	var seqs []int64
	if err := tx.QueryRow(ctx, "SELECT draw_decision_seqs($1)", len(fresh)).Scan(&seqs); err != nil {
		return fmt.Errorf("draw sequence numbers: %w", err)
	}
	if len(seqs) != len(fresh) {
		return fmt.Errorf("draw sequence numbers: got %d, want %d", len(seqs), len(fresh))
	}

	n := len(fresh)
	txids, ids, ats := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, r := range fresh {
		txids[i], ids[i], ats[i] = r.rec.TransactionID, r.rec.ID, r.rec.EvaluatedAt
	}
	// A conflict with a claim another node has not committed yet waits for
	// it, so an id is never decided twice across nodes.
	rows, err := tx.Query(ctx, `INSERT INTO decision_txids (transaction_id, decision_id, evaluated_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
		ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id`, txids, ids, ats)
	if err != nil {
		return fmt.Errorf("claim transaction ids: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("claim transaction ids: %w", err)
	}
	isNew := make(map[string]bool, len(claimed))
	for _, id := range claimed {
		isNew[id] = true
	}

	var dupIDs []string
	for _, r := range fresh {
		if !isNew[r.rec.TransactionID] {
			dupIDs = append(dupIDs, r.rec.TransactionID)
		}
	}
	if len(dupIDs) > 0 {
		stored, err := d.storedByTx(ctx, tx, dupIDs)
		if err != nil {
			return err
		}
		for _, r := range fresh {
			if isNew[r.rec.TransactionID] {
				continue
			}
			if r.dup = stored[r.rec.TransactionID]; r.dup == nil {
				return fmt.Errorf("transaction %q is claimed but its decision is not stored", r.rec.TransactionID)
			}
		}
	}

	if err := insertDecisions(ctx, tx, fresh, seqs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i, r := range fresh {
		if r.dup == nil {
			r.rec.Seq = uint64(seqs[i])
		}
	}
	for _, r := range twins {
		f := first[r.rec.TransactionID]
		r.dup = f.dup
		if r.dup == nil {
			stored := *f.rec // not the caller's own record
			r.dup = &stored
		}
	}
	return nil
}

// insertDecisions inserts the commits of fresh that are not duplicates,
// fresh[i] with sequence number seqs[i], in one statement.
func insertDecisions(ctx context.Context, tx pgx.Tx, fresh []*commitReq, seqs []int64) error {
	var (
		seq                               []int64
		id, txid, account, card, merchant []string
		outcome, cause, hash, doc         []string
		score                             []float64
		degraded                          []bool
		version                           []int64
		at                                []time.Time
	)
	for i, r := range fresh {
		if r.dup != nil {
			continue
		}
		rec := r.rec
		seq = append(seq, seqs[i])
		id = append(id, rec.ID)
		txid = append(txid, rec.TransactionID)
		account = append(account, rec.Payment.Account.ID)
		card = append(card, rec.Payment.Card.Fingerprint)
		merchant = append(merchant, rec.Payment.Merchant.ID)
		outcome = append(outcome, string(rec.Outcome))
		score = append(score, float64(rec.Score))
		degraded = append(degraded, rec.Degraded)
		cause = append(cause, string(rec.DegradedCause))
		version = append(version, rec.RulesetVersion)
		at = append(at, rec.EvaluatedAt)
		hash = append(hash, rec.RequestHash)
		doc = append(doc, string(r.doc))
	}
	if len(seq) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO decisions (seq, decision_id, transaction_id, account_id, card_fingerprint,
			merchant_id, outcome, score, degraded, degraded_cause, ruleset_version, evaluated_at, request_hash, record)
		SELECT s, i, t, a, c, m, o, sc, dg, dc, v, at, h, r::jsonb
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::float8[], $9::bool[], $10::text[], $11::bigint[], $12::timestamptz[], $13::text[], $14::text[])
			AS u(s, i, t, a, c, m, o, sc, dg, dc, v, at, h, r)`,
		seq, id, txid, account, card, merchant, outcome, score, degraded, cause, version, at, hash, doc)
	if err != nil {
		return fmt.Errorf("insert decisions: %w", err)
	}
	return nil
}

// storedByTx reads the stored records of transaction ids, keyed by id.
func (d *Decisions) storedByTx(ctx context.Context, q querier, txids []string) (map[string]*engine.Record, error) {
	rows, err := q.Query(ctx, "SELECT "+recordColumns+" FROM decisions WHERE transaction_id = ANY($1)", txids)
	if err != nil {
		return nil, fmt.Errorf("read stored decisions: %w", err)
	}
	recs, err := collectRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("read stored decisions: %w", err)
	}
	out := make(map[string]*engine.Record, len(recs))
	for _, rec := range recs {
		out[rec.TransactionID] = rec
	}
	return out, nil
}

// isPartitionViolation reports whether err is PostgreSQL refusing a row
// for the partition it was routed to.
func isPartitionViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == defaultPartition
}
