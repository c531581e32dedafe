package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riskengine/risk/features/kv"
)

// scanPage is how many rows a Scan fetches per query. Between pages the
// rows are closed, so the callback may use the same Tx.
const scanPage = 256

// rollbackTimeout bounds the rollback of a failed transaction, which runs
// even when the caller's ctx has ended.
const rollbackTimeout = 5 * time.Second

// live is the condition every read adds: expired rows read as absent
// until ReapExpired deletes them. now() is the transaction's start, so a
// transaction sees one set of live keys throughout.
const live = "(expires_at IS NULL OR expires_at > now())"

// KV returns the backend's kv.DB, on the kv table. View runs in a
// read-only REPEATABLE READ transaction (one snapshot); Update runs in a
// SERIALIZABLE one and answers serialization failures and deadlocks with
// an error wrapping kv.ErrConflict, which the caller retries. An Update
// that wrote or deleted keys announces their keyspace prefixes on the
// change feed (see Watch) when it commits. ErrTooBig is never returned.
// Safe for concurrent use; each transaction holds one pooled connection.
func (db *DB) KV() kv.DB { return pgKV{db: db, registry: newRegistry()} }

type pgKV struct {
	db       *DB
	registry registry
}

func (p pgKV) View(ctx context.Context, fn func(kv.Tx) error) error {
	return p.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// Update runs fn in a serializable transaction. When PostgreSQL refuses
// it for a conflict with a concurrent one (another node wrote what fn
// read), it runs fn again on a fresh transaction, up to updateAttempts
// times, so fn must act only through its Tx and the variables it sets.
// Only then is the error kv.ErrConflict.
func (p pgKV) Update(ctx context.Context, fn func(kv.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := p.run(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if !errors.Is(err, kv.ErrConflict) || attempt >= updateAttempts {
			return err
		}
		// A short randomised pause lets the winner finish.
		pause := time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// updateAttempts bounds the runs of one Update that keeps conflicting.
const updateAttempts = 10

func (p pgKV) run(ctx context.Context, opts pgx.TxOptions, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := p.db.Pool.BeginTx(ctx, opts)
	if err != nil {
		return kvError(err)
	}
	defer func() {
		// After Commit this is a no-op.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	t := &pgTx{ctx: ctx, tx: tx, registry: p.registry}
	if opts.AccessMode != pgx.ReadOnly {
		t.touched = map[string]struct{}{}
	}
	if err := fn(t); err != nil {
		return kvError(err)
	}
	if len(t.touched) > 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", changesChannel, changePayload(t.touched)); err != nil {
			return kvError(fmt.Errorf("change feed: %w", err))
		}
	}
	return kvError(tx.Commit(ctx))
}

// kvError marks PostgreSQL's "retry this transaction" answers as
// kv.ErrConflict: serialization failures (40001), deadlocks (40P01) and
// unique violations (23505), which an upsert meets only when a concurrent
// transaction inserted the same key.
func kvError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "23505":
			return fmt.Errorf("%w: %w", kv.ErrConflict, err)
		}
	}
	return err
}

// pgTx is a kv.Tx on one pgx transaction.
type pgTx struct {
	// ctx is the View's or Update's: kv.Tx's methods take none, and the
	// transaction lives only for that call.
	ctx      context.Context
	tx       pgx.Tx
	registry registry
	// touched collects the change-feed prefixes of the keys written; nil
	// in a View.
	touched map[string]struct{}
}

func (t *pgTx) Get(key []byte) ([]byte, error) {
	var v []byte
	err := t.tx.QueryRow(t.ctx, "SELECT v FROM kv WHERE k = $1 AND "+live, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, kvError(fmt.Errorf("kv get: %w", err))
	}
	return v, nil
}

func (t *pgTx) Set(key, value []byte) error {
	return t.put(key, value, nil)
}

func (t *pgTx) SetTTL(key, value []byte, ttl time.Duration) error {
	return t.put(key, value, &ttl)
}

// put is one upsert; ttl nil stores a key that does not expire.
func (t *pgTx) put(key, value []byte, ttl *time.Duration) error {
	if value == nil {
		value = []byte{} // pgx sends a nil slice as NULL
	}
	var micros *int64
	if ttl != nil {
		m := ttl.Microseconds()
		micros = &m
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO kv (k, v, expires_at)
		VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at`, key, value, micros)
	if err != nil {
		return kvError(fmt.Errorf("kv set: %w", err))
	}
	t.touch(key)
	return nil
}

func (t *pgTx) Delete(key []byte) error {
	if _, err := t.tx.Exec(t.ctx, "DELETE FROM kv WHERE k = $1", key); err != nil {
		return kvError(fmt.Errorf("kv delete: %w", err))
	}
	t.touch(key)
	return nil
}

func (t *pgTx) touch(key []byte) {
	if t.touched != nil {
		t.touched[t.registry.prefix(key)] = struct{}{}
	}
}

// Scan reads scanPage rows at a time, each page a query of its own that
// starts after the previous page's last key, and calls fn only once the
// page's rows are closed: pgx runs one query at a time per connection.
func (t *pgTx) Scan(prefix []byte, opt kv.ScanOptions, fn func(key, value []byte) error) error {
	end := kv.PrefixEnd(prefix)
	// The scan runs from start towards the far bound; start is inclusive
	// on the first page and exclusive (the last key seen) after it.
	var start []byte
	switch {
	case !opt.Reverse && opt.From != nil && bytes.Compare(opt.From, prefix) > 0:
		start = opt.From
	case !opt.Reverse:
		start = prefix
	case opt.From != nil && (end == nil || bytes.Compare(opt.From, end) < 0):
		start = opt.From
	default:
		start = nil // the end of the prefix
	}
	if opt.Reverse && start != nil && bytes.Compare(start, prefix) < 0 {
		return nil
	}
	if !opt.Reverse && end != nil && bytes.Compare(start, end) >= 0 {
		return nil
	}
	first := true
	for {
		keys, values, err := t.page(prefix, end, start, first, opt)
		if err != nil {
			return err
		}
		for i, k := range keys {
			var v []byte
			if !opt.KeysOnly {
				v = values[i]
			}
			if err := fn(k, v); err != nil {
				if errors.Is(err, kv.Stop) {
					return nil
				}
				return err
			}
		}
		if len(keys) < scanPage {
			return nil
		}
		start, first = keys[len(keys)-1], false
	}
}

// page fetches up to scanPage rows of a Scan.
func (t *pgTx) page(prefix, end, start []byte, inclusive bool, opt kv.ScanOptions) (keys, values [][]byte, err error) {
	var q strings.Builder
	var args []any
	arg := func(b []byte) string {
		if b == nil {
			b = []byte{} // the empty prefix; nil would be NULL
		}
		args = append(args, b)
		return fmt.Sprintf("$%d", len(args))
	}
	q.WriteString("SELECT k")
	if !opt.KeysOnly {
		q.WriteString(", v")
	}
	q.WriteString(" FROM kv WHERE " + live)
	from, to := ">", "<"
	if opt.Reverse {
		from, to = "<", ">"
	}
	if inclusive {
		from += "="
	}
	if opt.Reverse {
		q.WriteString(" AND k >= " + arg(prefix))
		if start != nil {
			q.WriteString(" AND k " + from + " " + arg(start))
		} else if end != nil {
			q.WriteString(" AND k < " + arg(end))
		}
		q.WriteString(" ORDER BY k DESC")
	} else {
		q.WriteString(" AND k " + from + " " + arg(start))
		if end != nil {
			q.WriteString(" AND k " + to + " " + arg(end))
		}
		q.WriteString(" ORDER BY k")
	}
	fmt.Fprintf(&q, " LIMIT %d", scanPage)

	rows, err := t.tx.Query(t.ctx, q.String(), args...)
	if err != nil {
		return nil, nil, kvError(fmt.Errorf("kv scan: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		dst := []any{&k}
		if !opt.KeysOnly {
			dst = append(dst, &v)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, nil, fmt.Errorf("kv scan: %w", err)
		}
		keys = append(keys, k)
		values = append(values, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, kvError(fmt.Errorf("kv scan: %w", err))
	}
	return keys, values, nil
}

// ReapExpired deletes the rows whose TTL has passed and returns how many.
// Reads already skip them; this only reclaims the space. Deleting them
// changes nothing a reader sees, so nothing goes on the change feed.
func (db *DB) ReapExpired(ctx context.Context) (int64, error) {
	tag, err := db.Pool.Exec(ctx, "DELETE FROM kv WHERE expires_at <= now()")
	if err != nil {
		return 0, fmt.Errorf("reap expired kv rows: %w", err)
	}
	return tag.RowsAffected(), nil
}
