package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new unique identifier with the given prefix: 48 bits of
// millisecond time then 80 random bits, so ids sort by creation time.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	return prefix + idEncoding.EncodeToString(b[:])
}

// DecisionID returns the id of the decision on a transaction: "dec_" and
// 128 bits of a SHA-256 of the transaction id. A transaction is decided
// once (a retry gets the stored decision), so the id can be derived from
// it, and a store finds a transaction's record by its id without an index
// of transaction ids. The derivation is part of the storage format: a
// change would lose the way from stored transactions to their decisions.
func DecisionID(transactionID string) string {
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], "risk decision\x00"...), transactionID...))
	return "dec_" + idEncoding.EncodeToString(sum[:16])
}
