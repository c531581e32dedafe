package features

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/riskengine/risk/engine"
)

// DistinctExactCap is how many distinct values a distinct feature counts
// exactly per entity. Past it, the entity switches to HyperLogLog sketches
// (precision 12: a standard error of about 1.6%).
const DistinctExactCap = 256

const hllPrecision = 12

// bucket summarises the events of one time bucket.
type bucket struct {
	start       int64 // bucket start, unix seconds
	count       int64
	sum         float64
	min, max    float64
	first, last int64 // event times, unix nanoseconds
}

// window is the state of one feature for one entity: its non-empty buckets
// in ascending start order, and for distinct features the values seen.
// Storage stays bounded: buckets older than the window are pruned on every
// update, so at most window/bucket+1 remain.
type window struct {
	// name and epoch say which feature, in which state, the window is of
	// (entity.go); they are encoded with the entity, not the window.
	name  string
	epoch uint64
	// seq is the highest decision sequence number recorded into the
	// window. A replay after a restart skips decisions at or below it:
	// the stored window already holds them. Zero for windows stored before
	// it was kept (encoding version 1), which hold exactly the decisions up
	// to the watermark.
	seq     uint64
	buckets []bucket
	// exact maps a value hash to the start of the last bucket it was seen
	// in, while at most DistinctExactCap values are live.
	exact map[uint64]int64
	// sketches holds one HyperLogLog per bucket start once exact overflowed.
	sketches map[int64]*hyperloglog.Sketch
}

// add records one event at t (value v is the aggregated field, hash the
// distinct value's hash) and prunes what fell out of the window ending at
// the newest event seen. Pruning follows event time, not the wall clock, so
// replays of old traffic keep their history.
func (w *window) add(f *feature, t time.Time, v float64, hash uint64, hasHash bool) {
	bs := int64(f.bucket / time.Second)
	start := t.Unix() - mod(t.Unix(), bs)
	i, found := slices.BinarySearchFunc(w.buckets, start, func(b bucket, s int64) int { return cmpInt(b.start, s) })
	if !found {
		w.buckets = slices.Insert(w.buckets, i, bucket{start: start, min: math.Inf(1), max: math.Inf(-1), first: math.MaxInt64, last: math.MinInt64})
	}
	b := &w.buckets[i]
	b.count++
	b.sum += v
	b.min = math.Min(b.min, v)
	b.max = math.Max(b.max, v)
	ns := t.UnixNano()
	b.first = min(b.first, ns)
	b.last = max(b.last, ns)
	if hasHash {
		w.addDistinct(start, hash)
	}
	// Nothing a read at or after the newest event can see is pruned.
	w.prune(f, time.Unix(0, w.buckets[len(w.buckets)-1].last))
}

func (w *window) addDistinct(start int64, hash uint64) {
	if w.sketches != nil {
		s := w.sketches[start]
		if s == nil {
			s, _ = hyperloglog.NewSketch(hllPrecision, true) // valid precision: cannot fail
			w.sketches[start] = s
		}
		s.InsertHash(hash)
		return
	}
	if w.exact == nil {
		w.exact = make(map[uint64]int64)
	}
	if last, ok := w.exact[hash]; !ok || start > last {
		w.exact[hash] = start
	}
	if len(w.exact) > DistinctExactCap {
		w.sketches = make(map[int64]*hyperloglog.Sketch)
		for h, s := range w.exact {
			w.addDistinct(s, h)
		}
		w.exact = nil
	}
}

// prune drops buckets and distinct values that no longer overlap the
// window ending at now.
func (w *window) prune(f *feature, now time.Time) {
	oldest := w.oldestStart(f, now)
	n := 0
	for n < len(w.buckets) && w.buckets[n].start < oldest {
		n++
	}
	if n > 0 {
		w.buckets = slices.Delete(w.buckets, 0, n)
	}
	for h, s := range w.exact {
		if s < oldest {
			delete(w.exact, h)
		}
	}
	for s := range w.sketches {
		if s < oldest {
			delete(w.sketches, s)
		}
	}
	if w.sketches != nil && len(w.sketches) == 0 {
		w.sketches = nil
	}
}

// oldestStart is the start of the oldest bucket inside the window ending at
// t: the window covers the bucket holding t-window and every later one.
func (w *window) oldestStart(f *feature, t time.Time) int64 {
	bs := int64(f.bucket / time.Second)
	from := t.Add(-f.window).Unix()
	return from - mod(from, bs)
}

// value computes the feature over the window ending at t, excluding buckets
// that start after t (events later than the payment being decided).
func (w *window) value(f *feature, t time.Time) float64 {
	oldest := w.oldestStart(f, t)
	last := t.Unix()
	var count int64
	var sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	first, lastSeen := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.start < oldest || b.start > last {
			continue
		}
		count += b.count
		sum += b.sum
		lo, hi = math.Min(lo, b.min), math.Max(hi, b.max)
		first, lastSeen = min(first, b.first), max(lastSeen, b.last)
	}
	switch f.def.Aggregate {
	case Count:
		return float64(count)
	case Sum:
		return sum
	case Avg:
		if count == 0 {
			return 0
		}
		return sum / float64(count)
	case Min:
		if count == 0 {
			return 0
		}
		return lo
	case Max:
		if count == 0 {
			return 0
		}
		return hi
	case FirstSeen, LastSeen:
		if count == 0 {
			return -1
		}
		at := first
		if f.def.Aggregate == LastSeen {
			at = lastSeen
		}
		return math.Max(0, float64(t.UnixNano()-at)/1e9)
	case Distinct:
		return w.distinct(oldest, last)
	}
	return 0
}

func (w *window) distinct(oldest, last int64) float64 {
	if w.sketches != nil {
		merged, _ := hyperloglog.NewSketch(hllPrecision, true) // valid precision: cannot fail
		for s, sk := range w.sketches {
			if s >= oldest && s <= last {
				_ = merged.Merge(sk) // same precision: cannot fail
			}
		}
		return float64(merged.Estimate())
	}
	n := 0
	for _, s := range w.exact {
		if s >= oldest && s <= last {
			n++
		}
	}
	return float64(n)
}

// Encoding of a window (version 3):
//
//	byte version | uvarint seq | uvarint nbuckets | per bucket: varint start
//	(the first bucket's, then the difference from the one before), uvarint
//	count, byte flags, the values, the times | byte distinct mode (0 none,
//	1 exact, 2 sketches) | exact: uvarint n, per value uint64 hash, varint
//	start less the first bucket's start | sketches: uvarint n, per sketch
//	varint start, uvarint len, bytes.
//
// The flags say how a bucket's values and times are written. bucketSame:
// min, max and sum/count are one value, written once (always so for a
// bucket of one event); else sum, min and max follow. bucketInts: the
// values are whole numbers written as varints (amounts are minor units);
// else as float64 bits. bucketRawTimes: first and last follow as varint
// nanoseconds; else first as uvarint nanoseconds after start and last as
// uvarint nanoseconds after first. A window of one event with a whole
// amount takes 20 bytes against 52 in version 2. Entity writes are most of
// what a decision puts in Badger's memtables, so the smaller they are, the
// rarer the memtable flushes and the lighter the compactions.
//
// Version 2 wrote every bucket as varint start, varint count, float64 sum,
// min, max, varint first, last, and exact starts as they are; version 1 is
// version 2 without seq. Both still decode.
const windowVersion = 3

const (
	bucketSame = 1 << iota
	bucketInts
	bucketRawTimes
)

// maxExactInt is the largest magnitude a float64 holds every whole number
// up to; values within it are written as varints.
const maxExactInt = 1 << 53

// errCorrupt is the error of a feature state that does not decode. It
// wraps engine.ErrCorrupt, so a decision that needed it is degraded with
// engine.CauseStateCorrupt.
var errCorrupt = fmt.Errorf("feature state: %w", engine.ErrCorrupt)

func (w *window) encode(buf []byte) []byte {
	buf = append(buf, windowVersion)
	buf = binary.AppendUvarint(buf, w.seq)
	buf = binary.AppendUvarint(buf, uint64(len(w.buckets)))
	var prev int64
	for i := range w.buckets {
		b := &w.buckets[i]
		buf = binary.AppendVarint(buf, b.start-prev)
		prev = b.start
		buf = binary.AppendUvarint(buf, uint64(b.count))
		var flags byte
		same := b.min == b.max && b.count > 0 && b.sum == b.min*float64(b.count)
		if same {
			flags |= bucketSame
		}
		if isInt(b.min) && isInt(b.max) && isInt(b.sum) {
			flags |= bucketInts
		}
		relative := b.start > math.MinInt64/int64(time.Second) && b.start < math.MaxInt64/int64(time.Second) &&
			b.first >= b.start*1e9 && b.last >= b.first
		if !relative {
			flags |= bucketRawTimes
		}
		buf = append(buf, flags)
		value := func(v float64) {
			if flags&bucketInts != 0 {
				buf = binary.AppendVarint(buf, int64(v))
			} else {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			}
		}
		if same {
			value(b.min)
		} else {
			value(b.sum)
			value(b.min)
			value(b.max)
		}
		if relative {
			buf = binary.AppendUvarint(buf, uint64(b.first-b.start*1e9))
			buf = binary.AppendUvarint(buf, uint64(b.last-b.first))
		} else {
			buf = binary.AppendVarint(buf, b.first)
			buf = binary.AppendVarint(buf, b.last)
		}
	}
	switch {
	case w.sketches != nil:
		buf = append(buf, 2)
		buf = binary.AppendUvarint(buf, uint64(len(w.sketches)))
		for s, sk := range w.sketches {
			data, _ := sk.MarshalBinary() // never fails
			buf = binary.AppendVarint(buf, s)
			buf = binary.AppendUvarint(buf, uint64(len(data)))
			buf = append(buf, data...)
		}
	case len(w.exact) > 0:
		base := w.firstStart()
		buf = append(buf, 1)
		buf = binary.AppendUvarint(buf, uint64(len(w.exact)))
		for h, s := range w.exact {
			buf = binary.LittleEndian.AppendUint64(buf, h)
			buf = binary.AppendVarint(buf, s-base)
		}
	default:
		buf = append(buf, 0)
	}
	return buf
}

// firstStart is the start of the window's first bucket, or 0 without one:
// what version 3 writes exact starts relative to.
func (w *window) firstStart() int64 {
	if len(w.buckets) == 0 {
		return 0
	}
	return w.buckets[0].start
}

// isInt reports whether v is a whole number written exactly as a varint.
func isInt(v float64) bool {
	return v == math.Trunc(v) && v >= -maxExactInt && v <= maxExactInt
}

func decodeWindow(data []byte) (*window, error) {
	d := decoder{b: data}
	w := new(window)
	if err := readWindow(&d, w); err != nil {
		return nil, err
	}
	return w, nil
}

// readWindow reads one window encoding from d into w, leaving d after it.
func readWindow(d *decoder, w *window) error {
	var seq uint64
	version := d.byte()
	switch version {
	case 1:
	case 2, windowVersion:
		seq = d.uvarint()
	default:
		return errCorrupt
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // a bucket takes more than a byte
		return errCorrupt
	}
	*w = window{seq: seq, buckets: make([]bucket, 0, n)}
	var prev int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		if version < windowVersion {
			w.buckets = append(w.buckets, bucket{
				start: d.varint(), count: d.varint(),
				sum: d.float(), min: d.float(), max: d.float(),
				first: d.varint(), last: d.varint(),
			})
			continue
		}
		b := d.bucket(prev)
		prev = b.start
		w.buckets = append(w.buckets, b)
	}
	switch d.byte() {
	case 1:
		var base int64
		if version == windowVersion {
			base = w.firstStart()
		}
		m := d.uvarint()
		w.exact = make(map[uint64]int64, min(m, DistinctExactCap+1))
		for i := uint64(0); i < m && d.err == nil; i++ {
			h := d.uint64()
			w.exact[h] = base + d.varint()
		}
	case 2:
		m := d.uvarint()
		w.sketches = make(map[int64]*hyperloglog.Sketch)
		for i := uint64(0); i < m && d.err == nil; i++ {
			s := d.varint()
			raw := d.bytes(d.uvarint())
			sk := new(hyperloglog.Sketch)
			if d.err == nil {
				if err := sk.UnmarshalBinary(raw); err != nil {
					return errCorrupt
				}
			}
			w.sketches[s] = sk
		}
	}
	return d.err
}

// decoder reads the window encoding, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errCorrupt, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bucket reads a version 3 bucket whose start is written relative to
// prev, the start of the bucket before it (0 for the first).
func (d *decoder) bucket(prev int64) bucket {
	b := bucket{start: prev + d.varint()}
	count := d.uvarint()
	flags := d.byte()
	if count == 0 || count > math.MaxInt64 || flags&^(bucketSame|bucketInts|bucketRawTimes) != 0 {
		d.fail()
		return b
	}
	b.count = int64(count)
	value := func() float64 {
		if flags&bucketInts != 0 {
			return float64(d.varint())
		}
		return d.float()
	}
	if flags&bucketSame != 0 {
		v := value()
		b.min, b.max, b.sum = v, v, v*float64(b.count)
	} else {
		b.sum, b.min, b.max = value(), value(), value()
	}
	if flags&bucketRawTimes != 0 {
		b.first, b.last = d.varint(), d.varint()
	} else {
		b.first = b.start*1e9 + int64(d.uvarint())
		b.last = b.first + int64(d.uvarint())
	}
	return b
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) float() float64 { return math.Float64frombits(d.uint64()) }

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
