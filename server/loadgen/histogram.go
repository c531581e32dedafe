package loadgen

import (
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// HistogramMax is the largest latency a Histogram tells apart (about 36
// minutes); larger values are recorded as HistogramMax.
const HistogramMax = time.Duration(1<<41 - 1)

// histogramDigits is the HdrHistogram precision: three significant digits,
// so a quantile is within 0.1% of the value it stands for.
const histogramDigits = 3

// Histogram counts durations from 1ns to HistogramMax in fixed memory (256
// KiB, allocated on the first Record) with a relative error of at most
// 0.1%: an HdrHistogram (github.com/HdrHistogram/hdrhistogram-go) of
// nanoseconds, plus the exact count, sum, minimum and maximum. The zero
// value is empty and ready to use. It is not safe for concurrent use.
type Histogram struct {
	h        *hdrhistogram.Histogram // nil until the first Record or Merge
	sum      time.Duration
	min, max time.Duration
}

func (h *Histogram) hdr() *hdrhistogram.Histogram {
	if h.h == nil {
		h.h = hdrhistogram.New(1, int64(HistogramMax), histogramDigits)
	}
	return h.h
}

// Record adds one value. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = min(max(d, 0), HistogramMax)
	hd := h.hdr()
	if hd.TotalCount() == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.sum += d
	// The value is within the trackable range, so RecordValue cannot fail.
	_ = hd.RecordValue(int64(d))
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.Count() == 0 {
		return
	}
	if h.Count() == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.sum += o.sum
	h.hdr().Merge(o.h)
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	if h.h != nil {
		h.h.Reset()
	}
	h.sum, h.min, h.max = 0, 0, 0
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 {
	if h.h == nil {
		return 0
	}
	return uint64(h.h.TotalCount())
}

// Max returns the largest recorded value exactly, or zero when h is empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest recorded value exactly, or zero when h is empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean returns the exact mean of the recorded values, or zero when h is empty.
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.sum / time.Duration(n)
}

// Quantile returns the value at quantile q in [0, 1]: the q*n-th smallest
// recorded value (rounded to the nearest rank), to within 0.1%, and never
// outside [Min, Max]. Quantile(1) is Max exactly. It returns zero when h is
// empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count() == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	v := time.Duration(h.h.ValueAtQuantile(100 * q))
	return min(max(v, h.min), h.max)
}

// Bins counts the recorded values into the ranges ending at bounds, which
// must be increasing: element i counts values v with bounds[i-1] < v <=
// bounds[i], and one extra last element counts values above the last bound.
// A value is placed by the middle of its HdrHistogram bucket, so values
// within 0.1% of a bound may land on either side of it.
func (h *Histogram) Bins(bounds []time.Duration) []uint64 {
	out := make([]uint64, len(bounds)+1)
	if h.Count() == 0 {
		return out
	}
	for _, b := range h.h.Distribution() {
		if b.Count == 0 {
			continue
		}
		v := time.Duration(b.From + (b.To-b.From)/2)
		out[sort.Search(len(bounds), func(j int) bool { return bounds[j] >= v })] += uint64(b.Count)
	}
	return out
}
