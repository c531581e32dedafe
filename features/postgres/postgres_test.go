package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

func TestOpenConcurrentMigratesOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	ctx := context.Background()

	const n = 2
	dbs := make([]*postgres.DB, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			db, err := postgres.Open(ctx, postgres.Options{URL: url, Schema: schema, MaxConns: 2})
			dbs[i] = db
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("open: %v", err)
		}
	}
	for _, db := range dbs {
		if db != nil {
			t.Cleanup(db.Close)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	rows, err := dbs[0].Pool.Query(ctx, "SELECT version, count(*) FROM schema_version GROUP BY version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Version, Count int }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != postgres.Latest() {
		t.Fatalf("schema_version has %d versions %v, want %d", len(got), got, postgres.Latest())
	}
	for i, r := range got {
		if r.Version != i+1 || r.Count != 1 {
			t.Errorf("schema_version row %d = version %d × %d, want version %d × 1", i, r.Version, r.Count, i+1)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.Open(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, 'from_the_future.sql')", postgres.Latest()+1); err != nil {
		t.Fatal(err)
	}
	again, err := postgres.Open(ctx, postgres.Options{URL: pgtest.URL(t), Schema: db.Schema, MaxConns: 1})
	if err == nil {
		again.Close()
		t.Fatal("open of a schema at Latest()+1 succeeded")
	}
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("open: %v, want ErrSchemaTooNew", err)
	}
}
