package loadgen_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/riskengine/risk/server/loadgen"
)

// exactQuantile is the ceil(q*n)-th smallest of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func TestHistogramQuantileAccuracy(t *testing.T) {
	t.Parallel()
	const n = 100000
	tests := []struct {
		name string
		draw func(r *rand.Rand) time.Duration
	}{
		{"log-uniform 1us..60s", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(math.Log(1e3) + r.Float64()*(math.Log(60e9)-math.Log(1e3))))
		}},
		{"log-normal around 5ms", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(math.Log(5e6) + 1.2*r.NormFloat64()))
		}},
		{"bimodal 1ms and 800ms", func(r *rand.Rand) time.Duration {
			if r.IntN(100) < 97 {
				return time.Millisecond + time.Duration(r.IntN(200_000))
			}
			return 800*time.Millisecond + time.Duration(r.IntN(50_000_000))
		}},
		{"constant 42us", func(*rand.Rand) time.Duration { return 42 * time.Microsecond }},
		{"nanoseconds 0..300", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(301)) }},
	}
	quantiles := []float64{0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			var h loadgen.Histogram
			samples := make([]time.Duration, n)
			var sum time.Duration
			for i := range samples {
				samples[i] = tt.draw(r)
				sum += samples[i]
				h.Record(samples[i])
			}
			slices.Sort(samples)
			if got := h.Count(); got != n {
				t.Fatalf("Count() = %d, want %d", got, n)
			}
			for _, q := range quantiles {
				got, want := h.Quantile(q), exactQuantile(samples, q)
				if relErr(got, want) > 0.005 {
					t.Errorf("Quantile(%v) = %v, want %v within 0.5%% (error %.3f%%)", q, got, want, 100*relErr(got, want))
				}
			}
			if got, want := h.Max(), samples[n-1]; got != want {
				t.Errorf("Max() = %v, want %v", got, want)
			}
			if got, want := h.Mean(), sum/n; relErr(got, want) > 0.0001 {
				t.Errorf("Mean() = %v, want %v", got, want)
			}
		})
	}
}

func relErr(got, want time.Duration) float64 {
	if want == 0 {
		return math.Abs(float64(got))
	}
	return math.Abs(float64(got-want)) / float64(want)
}

func TestHistogramMergeAndBins(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var whole, a, b loadgen.Histogram
	for i := range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		whole.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got, want := a.Quantile(q), whole.Quantile(q); got != want {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if a.Count() != whole.Count() || a.Mean() != whole.Mean() || a.Min() != whole.Min() {
		t.Errorf("merged count/mean/min = %d/%v/%v, want %d/%v/%v",
			a.Count(), a.Mean(), a.Min(), whole.Count(), whole.Mean(), whole.Min())
	}

	var h loadgen.Histogram
	for _, d := range []time.Duration{500 * time.Microsecond, 900 * time.Microsecond, 1500 * time.Microsecond, 3 * time.Second, -time.Second} {
		h.Record(d)
	}
	got := h.Bins([]time.Duration{time.Millisecond, 2 * time.Millisecond})
	want := []uint64{3, 1, 1} // -1s counts as 0
	if !slices.Equal(got, want) {
		t.Errorf("Bins() = %v, want %v", got, want)
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Errorf("after Reset: count %d, p50 %v, max %v; want zeros", h.Count(), h.Quantile(0.5), h.Max())
	}
}
