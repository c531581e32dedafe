package review

import (
	"encoding/binary"

	"github.com/riskengine/risk/features/keyspace"
)

// Keys of this package in kv.DB: every prefix is here, and in the table of
// docs/architecture.md. Values start with a format byte (formatJSON), then
// JSON.
const (
	// prefixItem: item id -> item.
	prefixItem = keyspace.ReviewItem
	// prefixActive: 8-byte opened time (Unix ns) + item id -> nothing; the
	// items not closed (open or claimed), oldest first.
	prefixActive = keyspace.ReviewActive
	// prefixClosed: 8-byte closed time (Unix ns) + item id -> nothing.
	prefixClosed = keyspace.ReviewClosed
	// keyCursor: the sequence number of the next decision the queue reads
	// from the decision log (8 bytes).
	keyCursor = keyspace.ReviewCursor
	// keyPolicy: the review policy.
	keyPolicy = keyspace.ReviewPolicy
	// prefixCase: case id -> case. Case ids sort by creation time.
	prefixCase = keyspace.Case
)

// formatJSON is the format byte of every value this package stores.
const formatJSON = 0x01

// timeKey is prefix, t as 8 big-endian bytes of Unix nanoseconds, then id.
func timeKey(prefix string, ns int64, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefix), uint64(ns))
	return append(k, id...)
}
