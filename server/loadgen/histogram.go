package loadgen

import (
	"math/bits"
	"sort"
	"time"
)

// Histogram layout: values in nanoseconds below 2^(subBits+1) have a bucket
// each; above that every power of two is split into subCount linear buckets,
// so a bucket is at most 1/subCount of its lower bound wide and the middle of
// a bucket is within 1/(2*subCount) (0.4%) of any value in it.
const (
	subBits    = 7
	subCount   = 1 << subBits
	maxShift   = 33
	numBuckets = 2*subCount + maxShift*subCount
	// HistogramMax is the largest latency a Histogram tells apart (about 36
	// minutes); larger values are recorded as HistogramMax.
	HistogramMax = time.Duration(1<<(subBits+1+maxShift) - 1)
)

// Histogram counts durations from 1ns to HistogramMax in fixed memory (about
// 36 KiB) with a relative error of at most 0.4%, in the manner of
// HdrHistogram. The zero value is empty and ready to use. It is not safe for
// concurrent use.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

// Record adds one value. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = min(max(d, 0), HistogramMax)
	h.counts[bucketOf(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value exactly, or zero when h is empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest recorded value exactly, or zero when h is empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean returns the exact mean of the recorded values, or zero when h is empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the ceil(q*n)-th
// smallest recorded value, to within 0.4%. Quantile(1) is Max exactly. It
// returns zero when h is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketMid(i), h.min), h.max)
		}
	}
	return h.max
}

// Bins counts the recorded values into the ranges ending at bounds, which
// must be increasing: element i counts values v with bounds[i-1] < v <=
// bounds[i], and one extra last element counts values above the last bound.
// A value is placed by the middle of its bucket, so values within 0.4% of a
// bound may land on either side of it.
func (h *Histogram) Bins(bounds []time.Duration) []uint64 {
	out := make([]uint64, len(bounds)+1)
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		v := bucketMid(i)
		out[sort.Search(len(bounds), func(j int) bool { return bounds[j] >= v })] += c
	}
	return out
}

func bucketOf(d time.Duration) int {
	v := uint64(d)
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	top := v >> shift
	return 2*subCount + (shift-1)*subCount + int(top-subCount)
}

// bucketMid returns the middle of bucket i.
func bucketMid(i int) time.Duration {
	if i < 2*subCount {
		return time.Duration(i)
	}
	k := i - 2*subCount
	shift := k/subCount + 1
	top := uint64(k%subCount + subCount)
	return time.Duration(top<<shift + 1<<(shift-1))
}
