package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

// partitionOf returns the table holding the decision of a transaction.
func partitionOf(tb testing.TB, db *postgres.DB, txID string) string {
	tb.Helper()
	var name string
	err := db.Pool.QueryRow(context.Background(),
		"SELECT tableoid::regclass::text FROM decisions WHERE transaction_id = $1", txID).Scan(&name)
	if err != nil {
		tb.Fatalf("partition of %s: %v", txID, err)
	}
	return name
}

// partitions lists the partitions of the decisions table.
func partitions(tb testing.TB, db *postgres.DB) []string {
	tb.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT c.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'decisions'::regclass ORDER BY 1`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestDecisionsCommitCreatesPartition(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	at := time.Date(2031, 3, 10, 0, 0, 0, 0, time.UTC)
	commit(t, d, record("tx_2031", at, "acc", "fp", engine.Allow))
	if got := partitionOf(t, db, "tx_2031"); got != "decisions_p203103" {
		t.Errorf("stored in %s, want decisions_p203103", got)
	}
	// The month's last microsecond and the next month's first.
	commit(t, d, record("tx_end", time.Date(2031, 3, 31, 23, 59, 59, 999999000, time.UTC), "acc", "fp", engine.Allow),
		record("tx_next", time.Date(2031, 4, 1, 0, 0, 0, 0, time.UTC), "acc", "fp", engine.Allow))
	if got := partitionOf(t, db, "tx_end"); got != "decisions_p203103" {
		t.Errorf("last instant of March stored in %s", got)
	}
	if got := partitionOf(t, db, "tx_next"); got != "decisions_p203104" {
		t.Errorf("first instant of April stored in %s", got)
	}
}

// TestDecisionsDefaultPartition: a commit into a month without a partition
// lands in the default one, and moves, seq and xid kept, when the month's
// partition is created.
func TestDecisionsDefaultPartition(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	postgres.SetDecisionHooks(d, nil, nil, true)
	ctx := context.Background()
	at := time.Date(2032, 5, 20, 0, 0, 0, 0, time.UTC)
	rec := record("tx_default", at, "acc", "fp", engine.Deny)
	commit(t, d, rec)
	if got := partitionOf(t, db, "tx_default"); got != "decisions_default" {
		t.Fatalf("stored in %s, want decisions_default", got)
	}
	var xidBefore string
	if err := db.Pool.QueryRow(ctx, "SELECT xid::text FROM decisions WHERE transaction_id = 'tx_default'").Scan(&xidBefore); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsurePartition(ctx, at); err != nil {
		t.Fatalf("ensure partition: %v", err)
	}
	if got := partitionOf(t, db, "tx_default"); got != "decisions_p203205" {
		t.Errorf("after EnsurePartition stored in %s, want decisions_p203205", got)
	}
	var xidAfter string
	if err := db.Pool.QueryRow(ctx, "SELECT xid::text FROM decisions WHERE transaction_id = 'tx_default'").Scan(&xidAfter); err != nil {
		t.Fatal(err)
	}
	if xidAfter != xidBefore {
		t.Errorf("xid %s became %s in the move", xidBefore, xidAfter)
	}
	got, err := d.Lookup(ctx, "tx_default")
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, "moved record", got, rec)
	if err := d.EnsurePartition(ctx, at); err != nil {
		t.Errorf("ensure an existing partition: %v", err)
	}
}

func TestDecisionsDropBefore(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	ctx := context.Background()
	day := func(m time.Month, d int) time.Time { return time.Date(2025, m, d, 12, 0, 0, 0, time.UTC) }
	commit(t, d,
		record("tx_jan", day(1, 15), "acc", "fp", engine.Allow),
		record("tx_feb", day(2, 10), "acc", "fp", engine.Allow),
		record("tx_mar", day(3, 5), "acc", "fp", engine.Allow),
	)
	n, err := d.DropBefore(ctx, day(3, 20))
	if err != nil || n != 2 {
		t.Fatalf("drop: %d partitions, %v; want 2", n, err)
	}
	if c, err := d.Count(ctx); err != nil || c != 1 {
		t.Errorf("count %d, %v; want 1", c, err)
	}
	for _, tx := range []string{"tx_jan", "tx_feb"} {
		if _, err := d.Lookup(ctx, tx); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("lookup %s: %v, want ErrNotFound", tx, err)
		}
	}
	if _, err := d.Lookup(ctx, "tx_mar"); err != nil {
		t.Errorf("lookup tx_mar: %v", err)
	}
	var guarded int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM decision_txids").Scan(&guarded); err != nil || guarded != 1 {
		t.Errorf("decision_txids rows %d, %v; want 1", guarded, err)
	}
	if got := partitions(t, db); !slices.Equal(got, []string{"decisions_default", "decisions_p202503"}) {
		t.Errorf("partitions %v", got)
	}
	if n, err := d.DropBefore(ctx, day(3, 20)); err != nil || n != 0 {
		t.Errorf("second drop: %d, %v; want 0", n, err)
	}
}

func TestDecisionsMaintain(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db := openDB(t, url, pgtest.Schema(t, url))
	now := time.Date(2027, 11, 15, 0, 0, 0, 0, time.UTC)
	d := newDecisions(t, db, postgres.DecisionOptions{Retention: 90 * 24 * time.Hour, Now: func() time.Time { return now }})
	commit(t, d, record("tx_old", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), "acc", "fp", engine.Allow),
		record("tx_aug", time.Date(2027, 8, 30, 0, 0, 0, 0, time.UTC), "acc", "fp", engine.Allow))
	if err := d.Maintain(context.Background()); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	want := []string{"decisions_default", "decisions_p202708", "decisions_p202711", "decisions_p202712", "decisions_p202801"}
	if got := partitions(t, db); !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
}

// TestPartitionViolationIsRecognised provokes the error a batch gets when a
// partition is attached while it is routed to the default one, which the
// committer answers by routing the batch again.
func TestPartitionViolationIsRecognised(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	ctx := context.Background()
	if err := d.EnsurePartition(ctx, jan2026); err != nil {
		t.Fatal(err)
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO decisions_default (seq, decision_id, transaction_id, outcome, score, ruleset_version, evaluated_at, record)
		VALUES (1, 'dec_x', 'tx_x', 'allow', 0, 0, $1, '{}')`, jan2026)
	if !postgres.IsPartitionViolation(err) {
		t.Errorf("insert into the default partition for an attached month: %v, not recognised", err)
	}
	if postgres.IsPartitionViolation(errors.New("other")) || postgres.IsPartitionViolation(nil) {
		t.Error("other errors recognised")
	}
}
