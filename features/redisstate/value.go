package redisstate

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/riskengine/risk/engine"
)

// Bounds of the ring of counted transactions each state carries (see the
// package doc, "Counted transactions").
const (
	// ringSize is how many counted transactions a state remembers: the
	// newest ones. 64 entries cost about 1 KiB per entity.
	ringSize = 64
	// ringAge is how long a state remembers a counted transaction after
	// its last count; older entries are dropped at the next write.
	ringAge = 24 * time.Hour
)

// Stored value formats: the first byte of every value.
const (
	// formatPlain is a value written before states carried their counted
	// transactions: an 8-byte version whose top byte is always 0 (it
	// counts writes from 1), then the Calculator's encoding. It reads as
	// an empty ring.
	formatPlain = 0
	// formatRing is a 7-byte version after the format byte, then the
	// ring, then the Calculator's encoding.
	formatRing = 1
)

// versionLen is the length of the header that starts every stored value:
// the format byte and the version together, which the compare-and-set
// script compares whole.
const versionLen = 8

// versionMask keeps the version part of a header.
const versionMask = 1<<56 - 1

// flagDropped marks a ring that dropped an entry (by count or age) since
// the state was created: a transaction absent from it may have been
// counted.
const flagDropped = 1

// errCorrupt is a stored value that does not decode.
var errCorrupt = fmt.Errorf("feature state in redis: %w", engine.ErrCorrupt)

// counted is one transaction a state counted.
type counted struct {
	// hash is xxhash64 of the transaction id.
	hash uint64
	// labels is how many labels the decision had when counted.
	labels int
	// at is when it was counted (Options.Now), unix seconds.
	at int64
}

// value is a decoded stored value.
type value struct {
	// version counts the writes of the state; it wraps at 2^56.
	version uint64
	// rebuilt is the highest decision sequence number a Rebuild counted
	// into the state; a Rebuild skips those at or below it.
	rebuilt uint64
	// flags holds flagDropped.
	flags byte
	// ring is the counted transactions, oldest first.
	ring []counted
	// state is the Calculator's encoding, nil when there is none.
	state []byte
}

// txHash is the ring's name for a transaction id. Two ids colliding within
// one entity's 64 entries is about 1 in 3e17.
func txHash(id string) uint64 { return xxhash.Sum64String(id) }

// decodeValue decodes a stored value. Its state aliases v.
func decodeValue(v []byte) (value, error) {
	if len(v) < versionLen {
		return value{}, errCorrupt
	}
	h := binary.BigEndian.Uint64(v)
	switch byte(h >> 56) {
	case formatPlain:
		// What it counted is unknown: as if every entry was dropped.
		return value{version: h, flags: flagDropped, state: v[versionLen:]}, nil
	case formatRing:
	default:
		return value{}, errCorrupt
	}
	out := value{version: h & versionMask}
	b := v[versionLen:]
	var n int
	if out.rebuilt, n = binary.Uvarint(b); n <= 0 || len(b) < n+2 {
		return value{}, errCorrupt
	}
	b = b[n:]
	out.flags = b[0]
	count := int(b[1])
	b = b[2:]
	if count > ringSize {
		return value{}, errCorrupt
	}
	out.ring = make([]counted, count)
	for i := range out.ring {
		if len(b) < 8 {
			return value{}, errCorrupt
		}
		c := &out.ring[i]
		c.hash = binary.BigEndian.Uint64(b)
		b = b[8:]
		labels, n := binary.Uvarint(b)
		if n <= 0 || labels > 1<<20 {
			return value{}, errCorrupt
		}
		b = b[n:]
		if c.at, n = binary.Varint(b); n <= 0 {
			return value{}, errCorrupt
		}
		b = b[n:]
		c.labels = int(labels)
	}
	out.state = b
	return out, nil
}

// encode appends the stored value of v, written as the next version.
func (v *value) encode(buf []byte) []byte {
	h := uint64(formatRing)<<56 | (v.version+1)&versionMask
	buf = binary.BigEndian.AppendUint64(buf, h)
	buf = binary.AppendUvarint(buf, v.rebuilt)
	buf = append(buf, v.flags, byte(len(v.ring)))
	for _, c := range v.ring {
		buf = binary.BigEndian.AppendUint64(buf, c.hash)
		buf = binary.AppendUvarint(buf, uint64(c.labels))
		buf = binary.AppendVarint(buf, c.at)
	}
	return append(buf, v.state...)
}

// find returns the entry of hash, if the ring holds one.
func (v *value) find(hash uint64) (counted, bool) {
	for _, c := range v.ring {
		if c.hash == hash {
			return c, true
		}
	}
	return counted{}, false
}

// note records that the transaction hash was counted with labels labels
// at now, as the newest entry.
func (v *value) note(hash uint64, labels int, now time.Time) {
	ring := v.ring[:0:0]
	for _, c := range v.ring {
		if c.hash != hash {
			ring = append(ring, c)
		}
	}
	ring = append(ring, counted{hash: hash, labels: labels, at: now.Unix()})
	v.ring = ring
}

// trim drops the entries beyond the bounds at now: those counted more
// than ringAge before, and the oldest beyond ringSize. It notes in flags
// that it dropped any.
func (v *value) trim(now time.Time) {
	oldest := now.Add(-ringAge).Unix()
	keep := v.ring[:0]
	for _, c := range v.ring {
		if c.at >= oldest {
			keep = append(keep, c)
		}
	}
	if len(keep) > ringSize {
		keep = keep[len(keep)-ringSize:]
	}
	if len(keep) < len(v.ring) {
		v.flags |= flagDropped
	}
	v.ring = keep
}
