package features

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// encodeV2 is the window encoding before version 3, kept to test that
// stored windows of that version still decode.
func (w *window) encodeV2(buf []byte) []byte {
	buf = append(buf, 2)
	buf = binary.AppendUvarint(buf, w.seq)
	buf = binary.AppendUvarint(buf, uint64(len(w.buckets)))
	for _, b := range w.buckets {
		buf = binary.AppendVarint(buf, b.start)
		buf = binary.AppendVarint(buf, b.count)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(b.sum))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(b.min))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(b.max))
		buf = binary.AppendVarint(buf, b.first)
		buf = binary.AppendVarint(buf, b.last)
	}
	if len(w.exact) > 0 {
		buf = append(buf, 1)
		buf = binary.AppendUvarint(buf, uint64(len(w.exact)))
		for h, s := range w.exact {
			buf = binary.LittleEndian.AppendUint64(buf, h)
			buf = binary.AppendVarint(buf, s)
		}
		return buf
	}
	return append(buf, 0)
}

// windowCases are windows that take every path of the version 3 bucket
// encoding: one event, equal and unequal values, whole and fractional
// amounts, times before 1970 and times that do not fit relative to start.
func windowCases() map[string]*window {
	at := time.Date(2026, 12, 3, 10, 17, 42, 123456789, time.UTC)
	f := &feature{def: Definition{Name: "sum", Aggregate: Sum, Field: "amount"}, window: 24 * time.Hour, bucket: time.Hour}
	add := func(w *window, t time.Time, v float64) *window {
		w.add(f, t, v, 0, false)
		return w
	}
	cases := map[string]*window{
		"one event":        add(&window{seq: 9}, at, 4999),
		"equal values":     add(add(add(&window{}, at, 7), at.Add(time.Minute), 7), at.Add(2*time.Minute), 7),
		"unequal values":   add(add(&window{}, at, 100), at.Add(time.Second), -250),
		"fractions":        add(add(&window{}, at, 0.1), at.Add(time.Second), 0.2),
		"before 1970":      add(add(&window{}, time.Unix(-86400*3, 5), 12), time.Unix(-86400*3+60, 999), 1),
		"huge":             add(add(&window{}, at, math.MaxFloat64), at, math.MaxFloat64), // sum overflows to +Inf
		"beyond exact int": add(&window{}, at, 1<<60),
		"several buckets":  add(add(add(&window{}, at.Add(-20*time.Hour), 3), at.Add(-5*time.Hour), 4), at, 5),
		"empty":            {},
	}
	// A bucket whose times do not lie after its start (never made by add,
	// but whatever a window holds must survive its encoding).
	odd := add(&window{}, at, 1)
	odd.buckets[0].first = odd.buckets[0].start*1e9 - 1
	cases["times before start"] = odd
	rng := rand.New(rand.NewPCG(1, 2))
	g := &feature{def: Definition{Name: "devices", Aggregate: Distinct}, window: 24 * time.Hour, bucket: 15 * time.Minute}
	distinct := &window{}
	for i := range 30 {
		distinct.add(g, at.Add(time.Duration(i)*7*time.Minute), 0, rng.Uint64(), true)
	}
	cases["distinct exact"] = distinct
	return cases
}

// TestWindowEncodingRoundTrip: every window decodes to what was encoded, in
// version 3 and from version 2, and no truncation decodes.
func TestWindowEncodingRoundTrip(t *testing.T) {
	for name, w := range windowCases() {
		t.Run(name, func(t *testing.T) {
			for version, data := range map[string][]byte{"v3": w.encode(nil), "v2": w.encodeV2(nil)} {
				got, err := decodeWindow(data)
				if err != nil {
					t.Fatalf("%s: %v", version, err)
				}
				if !sameWindow(got, w) {
					t.Errorf("%s: decoded %+v, want %+v", version, got, w)
				}
				for cut := range len(data) {
					if _, err := decodeWindow(data[:cut]); err == nil {
						t.Fatalf("%s truncated to %d of %d bytes: decoded without error", version, cut, len(data))
					}
				}
			}
		})
	}
}

// sameWindow compares what a window's encoding keeps, NaN-free floats
// included bit for bit.
func sameWindow(a, b *window) bool {
	if a.seq != b.seq || len(a.buckets) != len(b.buckets) || len(a.exact) != len(b.exact) {
		return false
	}
	for i := range a.buckets {
		x, y := a.buckets[i], b.buckets[i]
		if x.start != y.start || x.count != y.count || x.first != y.first || x.last != y.last ||
			math.Float64bits(x.sum) != math.Float64bits(y.sum) ||
			math.Float64bits(x.min) != math.Float64bits(y.min) || math.Float64bits(x.max) != math.Float64bits(y.max) {
			return false
		}
	}
	return len(a.exact) == 0 || reflect.DeepEqual(a.exact, b.exact)
}

// TestWindowEncodingSize: a window of one whole-amount event, the common
// case, takes less than half its version 2 size.
func TestWindowEncodingSize(t *testing.T) {
	w := windowCases()["one event"]
	v3, v2 := len(w.encode(nil)), len(w.encodeV2(nil))
	if v3*2 >= v2 {
		t.Errorf("one-event window: %d bytes in version 3, %d in version 2", v3, v2)
	}
	t.Logf("one-event window: %d bytes (version 2: %d)", v3, v2)
}

// TestWindowDecodeRejectsBadBuckets: a zero count or unknown flags are
// corrupt, not a bucket.
func TestWindowDecodeRejectsBadBuckets(t *testing.T) {
	for name, bucket := range map[string][]byte{
		"zero count":    {0, 0, bucketInts, 2, 0, 0},
		"unknown flags": {0, 1, 1 << 5, 2, 0, 0},
	} {
		data := append([]byte{windowVersion, 0, 1}, bucket...)
		data = append(data, 0)
		if _, err := decodeWindow(data); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	good := []byte{windowVersion, 0, 1, 0, 1, bucketInts | bucketSame, 2, 0, 0, 0}
	if _, err := decodeWindow(good); err != nil {
		t.Errorf("a valid one-bucket window: %v", err)
	}
}
