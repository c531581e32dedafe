package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
)

// Search page sizes, as the Badger store has them.
const (
	defaultSearchLimit = 50
	maxSearchLimit     = 500
)

// Search returns one page of records matching q, newest first (ties by
// decision id), and the cursor of the next page ("" when there is none).
// Limit defaults to 50 and is at most 500. A transaction id filter finds
// at most one record and never a cursor. A cursor this store did not issue
// is a *engine.FieldError on "cursor".
func (d *Decisions) Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error) {
	if q.Limit <= 0 {
		q.Limit = defaultSearchLimit
	}
	q.Limit = min(q.Limit, maxSearchLimit)
	if q.TransactionID != "" {
		rec, err := d.Lookup(ctx, q.TransactionID)
		if errors.Is(err, engine.ErrNotFound) {
			return nil, "", nil
		}
		if err != nil || !q.Matches(rec) {
			return nil, "", err
		}
		return []*engine.Record{rec}, "", nil
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.AccountID != "" {
		where = append(where, "account_id = "+arg(q.AccountID))
	}
	if q.CardFingerprint != "" {
		where = append(where, "card_fingerprint = "+arg(q.CardFingerprint))
	}
	if q.Outcome != "" {
		where = append(where, "outcome = "+arg(string(q.Outcome)))
	}
	if !q.From.IsZero() {
		where = append(where, "evaluated_at >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "evaluated_at < "+arg(q.To))
	}
	if q.Cursor != "" {
		at, id, ok := parseCursor(q.Cursor)
		if !ok {
			return nil, "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this server issued")
		}
		a := arg(at)
		where = append(where, fmt.Sprintf("(evaluated_at < %s OR (evaluated_at = %s AND decision_id > %s))", a, a, arg(id)))
	}
	sql := "SELECT evaluated_at, " + recordColumns + " FROM decisions"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY evaluated_at DESC, decision_id LIMIT " + arg(q.Limit+1)
	rows, err := d.db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("search decisions: %w", err)
	}
	defer rows.Close()
	var (
		out  []*engine.Record
		last time.Time // evaluated_at of the last record, as stored
		next string
	)
	for rows.Next() {
		if len(out) == q.Limit {
			next = makeCursor(last, out[len(out)-1].ID)
			break
		}
		var (
			seq         int64
			doc, labels []byte
		)
		if err := rows.Scan(&last, &seq, &doc, &labels); err != nil {
			return nil, "", fmt.Errorf("search decisions: %w", err)
		}
		rec, err := decodeRecord(seq, doc, labels)
		if err != nil {
			return nil, "", fmt.Errorf("search decisions: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("search decisions: %w", err)
	}
	return out, next, nil
}

// A cursor is, as in the Badger store, the 8-byte inverted evaluation time
// in nanoseconds and the id of the last decision of the previous page,
// base64url without padding. The time is the column's (microseconds), not
// the record's, so the next page starts exactly after it.
func makeCursor(at time.Time, id string) string {
	b := binary.BigEndian.AppendUint64(nil, math.MaxUint64-uint64(at.UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

func parseCursor(s string) (at time.Time, id string, ok bool) {
	c, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(c) <= 8 || !bytes.HasPrefix(c[8:], []byte("dec_")) {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(math.MaxUint64-binary.BigEndian.Uint64(c[:8]))), string(c[8:]), true
}
