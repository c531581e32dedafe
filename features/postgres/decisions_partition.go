package postgres

// Monthly partitions of the decisions table: created ahead, created on
// demand for a month a commit needs, and dropped whole by retention.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultPartition takes the rows of months without a partition.
const defaultPartition = "decisions_default"

// partitionLock is the advisory lock key of partition changes, so nodes
// creating or dropping partitions at once take turns.
const partitionLock = 0x72647074 // "rdpt"

// partitionPrefix starts the name of every monthly partition:
// decisions_pYYYYMM.
const partitionPrefix = "decisions_p"

// monthsAhead is how many months after the current one Maintain creates.
const monthsAhead = 2

// monthOf returns the first instant of t's month, in UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(month time.Time) string { return partitionPrefix + month.Format("200601") }

// ident quotes a table name, in the DB's schema when it has one.
func (d *Decisions) ident(name string) string {
	if d.db.Schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{d.db.Schema, name}.Sanitize()
}

// literal renders a partition bound.
func literal(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05Z07:00") + "'" }

// Maintain creates the partitions of the current month and the next two
// when missing and, when Retention is set, drops the months wholly older
// than now minus Retention. The background run calls it; it is safe to
// call at any time from any node.
func (d *Decisions) Maintain(ctx context.Context) error {
	now := d.o.Now()
	m := monthOf(now)
	for i := 0; i <= monthsAhead; i++ {
		if err := d.ensurePartition(ctx, m.AddDate(0, i, 0)); err != nil {
			return err
		}
	}
	if d.o.Retention > 0 {
		if _, err := d.DropBefore(ctx, now.Add(-d.o.Retention)); err != nil {
			return err
		}
	}
	return nil
}

// EnsurePartition creates the partition of t's month when missing, moving
// into it the rows the default partition holds for that month.
func (d *Decisions) EnsurePartition(ctx context.Context, t time.Time) error {
	return d.ensurePartition(ctx, monthOf(t))
}

func (d *Decisions) ensurePartition(ctx context.Context, month time.Time) error {
	if month.Year() < 1970 {
		return nil // a zero time: the default partition keeps it
	}
	name := partitionName(month)
	table := d.ident(name)
	lo, hi := literal(month), literal(month.AddDate(0, 1, 0))
	err := pgx.BeginFunc(ctx, d.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		// Built apart and attached, rather than created as a partition
		// at once, so the default partition's rows of the month can move
		// in first (attaching refuses while they are there). The check
		// constraint spares ATTACH a scan of the new table.
		parent, def := d.ident("decisions"), d.ident(defaultPartition)
		check := pgx.Identifier{name + "_range"}.Sanitize()
		for _, sql := range []string{
			fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)", table, parent),
			fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (evaluated_at >= %s AND evaluated_at < %s)", table, check, lo, hi),
			fmt.Sprintf(`WITH moved AS (DELETE FROM %s WHERE evaluated_at >= %s AND evaluated_at < %s RETURNING *)
				INSERT INTO %s SELECT * FROM moved`, def, lo, hi, table),
			fmt.Sprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)", parent, table, lo, hi),
			fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, check),
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create partition %s: %w", name, err)
	}
	return nil
}

// DropBefore deletes the decisions of the months that ended at or before
// t: it drops their monthly partitions whole, and deletes the default
// partition's rows and the decision_txids rows evaluated before the first
// instant of t's month. Decisions of t's own month are kept entirely (a
// partition is dropped whole or not at all, and a transaction id stays
// guarded as long as its decision is kept). It returns the number of
// partitions dropped.
func (d *Decisions) DropBefore(ctx context.Context, t time.Time) (int, error) {
	cutoff := monthOf(t)
	dropped := 0
	err := pgx.BeginFunc(ctx, d.db.Pool, func(tx pgx.Tx) error {
		dropped = 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::regclass`, d.ident("decisions"))
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range names {
			digits, ok := strings.CutPrefix(name, partitionPrefix)
			if !ok {
				continue
			}
			month, err := time.Parse("200601", digits)
			if err != nil || month.AddDate(0, 1, 0).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+d.ident(name)); err != nil {
				return err
			}
			dropped++
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+d.ident(defaultPartition)+" WHERE evaluated_at < $1", cutoff); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM decision_txids WHERE evaluated_at < $1", cutoff)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("drop decisions before %s: %w", cutoff.Format("2006-01"), err)
	}
	return dropped, nil
}
