// Package kv is the storage boundary for the engine's small, slowly changing
// state: API keys, rule drafts and versions, lists, the audit trail, limits
// policy, webhooks, review items and the like. Each of those packages keeps
// its records under its own key prefix (see package keyspace) and reaches
// them only through DB and Tx, so the same code runs on the embedded Badger
// store of a single node and on PostgreSQL in cluster mode.
//
// Keys are compared as bytes: scans return them in bytewise order, the same
// order in every implementation.
package kv

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns, wrapped or as they are.
var (
	// ErrNotFound is Tx.Get's answer for a key that holds nothing.
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict is Update's answer when a concurrent transaction changed
	// what this one read; nothing was written and the caller may retry.
	ErrConflict = errors.New("kv: transaction conflict, retry")
	// ErrTooBig is Update's answer when one transaction holds more than the
	// implementation accepts; the caller splits the work.
	ErrTooBig = errors.New("kv: transaction too big")
	// Stop, returned by a Scan callback, ends the scan without an error.
	Stop = errors.New("kv: stop scan")
)

// DB runs transactions. View transactions see one consistent snapshot;
// Update transactions are serializable: either all of their writes land or
// none do, and a conflicting concurrent write makes one of them fail with
// ErrConflict. Implementations are safe for concurrent use.
type DB interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
}

// Tx reads and writes inside one transaction. A Tx is used by one goroutine
// and only inside the function it was passed to.
type Tx interface {
	// Get returns the value of key, or an error wrapping ErrNotFound. The
	// slice is the caller's to keep.
	Get(key []byte) ([]byte, error)
	// Set stores value under key.
	Set(key, value []byte) error
	// SetTTL stores value under key until ttl has passed; after that the
	// key reads as absent.
	SetTTL(key, value []byte, ttl time.Duration) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
	// Scan calls fn for every key starting with prefix, in bytewise order
	// (descending with Reverse), starting at opt.From when it is set. The
	// slices passed to fn are valid only during the call. A callback that
	// returns Stop ends the scan with a nil error; any other error ends it
	// with that error.
	Scan(prefix []byte, opt ScanOptions, fn func(key, value []byte) error) error
}

// ScanOptions shape a Scan.
type ScanOptions struct {
	// Reverse scans from the greatest key down.
	Reverse bool
	// From is where the scan starts, inclusive: the first key >= From, or
	// with Reverse the first key <= From. Nil starts at the prefix's end.
	From []byte
	// KeysOnly passes a nil value to fn; cheaper where values are large.
	KeysOnly bool
}

// Get is a one-key View.
func Get(ctx context.Context, db DB, key []byte) (value []byte, err error) {
	err = db.View(ctx, func(tx Tx) error {
		value, err = tx.Get(key)
		return err
	})
	return value, err
}

// Set is a one-key Update.
func Set(ctx context.Context, db DB, key, value []byte) error {
	return db.Update(ctx, func(tx Tx) error { return tx.Set(key, value) })
}

// Delete is a one-key Update.
func Delete(ctx context.Context, db DB, key []byte) error {
	return db.Update(ctx, func(tx Tx) error { return tx.Delete(key) })
}

// PrefixEnd returns the smallest key greater than every key starting with
// prefix, or nil when there is none (a prefix of only 0xff bytes).
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
