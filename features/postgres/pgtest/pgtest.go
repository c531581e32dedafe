// Package pgtest gives other packages' tests a PostgreSQL backend of their
// own: a fresh schema per test, dropped when the test ends, so tests run in
// parallel against one server without seeing each other's rows.
//
// The server is RISK_TEST_POSTGRES_URL, or DefaultURL when that is unset.
// When it cannot be reached the test is skipped, unless CI=true, where an
// absent server is a failure rather than a silent pass.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riskengine/risk/features/postgres"
)

// DefaultURL is the server tests use when RISK_TEST_POSTGRES_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// connectTimeout bounds the reachability probe, so a missing server costs
// a test a few seconds, not the dial timeout of the OS.
const connectTimeout = 5 * time.Second

// URL returns the test server's URL after checking that it answers. An
// unreachable server skips the test, or fails it when CI=true.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("RISK_TEST_POSTGRES_URL")
	if url == "" {
		url = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(context.Background())
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("postgres at %s unreachable (CI=true): %v", url, err)
		}
		tb.Skipf("postgres at %s unreachable, skipping (set RISK_TEST_POSTGRES_URL): %v", url, err)
	}
	return url
}

// Schema returns a new random schema name ("t_" and 16 hex digits) and
// drops that schema, with everything in it, when the test ends. It does
// not create the schema; postgres.Open does.
func Schema(tb testing.TB, url string) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// Open opens a migrated backend in a schema of the test's own, closed and
// dropped when the test ends.
func Open(tb testing.TB) *postgres.DB {
	tb.Helper()
	url := URL(tb)
	schema := Schema(tb, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, Schema: schema, MaxConns: 8})
	if err != nil {
		tb.Fatalf("open postgres schema %s: %v", schema, err)
	}
	tb.Cleanup(db.Close) // registered after the drop, so it runs first
	return db
}
