package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/kv/kvtest"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

func TestKVContract(t *testing.T) {
	t.Parallel()
	kvtest.Run(t, func(t *testing.T) kv.DB { return pgtest.Open(t).KV() })
}

func TestReapExpired(t *testing.T) {
	t.Parallel()
	db := pgtest.Open(t)
	store := db.KV()
	ctx := context.Background()
	err := store.Update(ctx, func(tx kv.Tx) error {
		for _, k := range []string{"reap/a", "reap/b"} {
			// A TTL already past: stored expired.
			if err := tx.SetTTL([]byte(k), []byte("x"), -time.Second); err != nil {
				return err
			}
		}
		if err := tx.SetTTL([]byte("reap/live"), []byte("x"), time.Hour); err != nil {
			return err
		}
		return tx.Set([]byte("reap/kept"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, store, []byte("reap/a")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get of a key stored expired: err = %v, want ErrNotFound", err)
	}
	n, err := db.ReapExpired(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ReapExpired = %d, %v; want 2, nil", n, err)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("kv holds %d rows after the reap, want 2 (reap/live, reap/kept)", rows)
	}
	if n, err := db.ReapExpired(ctx); err != nil || n != 0 {
		t.Errorf("second ReapExpired = %d, %v; want 0, nil", n, err)
	}
}
