package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of one load run, as printed and as written by --out.
// Latencies are in milliseconds, measured from each request's scheduled send
// time to the end of its response, for completed requests only.
type Report struct {
	Target          string  `json:"target"`
	TargetRate      float64 `json:"target_rate"`      // requests/s asked for
	AchievedRate    float64 `json:"achieved_rate"`    // completed requests/s over DurationSeconds
	DurationSeconds float64 `json:"duration_seconds"` // wall time, start to last response
	Sent            int64   `json:"sent"`             // requests handed to the HTTP client
	Completed       int64   `json:"completed"`        // requests that got a whole response
	// Errors counts requests that got no decision: transport errors plus
	// responses with a non-2xx status.
	Errors int64 `json:"errors"`
	// Unsent counts requests that fell due but were never sent because every
	// worker was busy until the run ended. Their latency is in no percentile.
	Unsent   int64 `json:"unsent"`
	Timeouts int64 `json:"timeouts"`
	// Status counts completed requests by HTTP status code.
	Status map[string]int64 `json:"status"`
	// TransportErrors counts requests without a whole response by cause
	// (timeout, canceled, connection_refused, connection_reset, eof, other).
	TransportErrors map[string]int64 `json:"transport_errors"`
	// Outcomes counts 2xx responses by their "decision" field; "unknown"
	// counts bodies without one.
	Outcomes  map[string]int64 `json:"outcomes"`
	Latency   Latency          `json:"latency_ms"`
	Histogram []Bin            `json:"histogram"`
}

// Latency summarises the latency distribution, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Bin is one latency histogram bucket: Count requests took more than the
// previous bin's LeMs and at most LeMs milliseconds.
type Bin struct {
	LeMs  float64 `json:"le_ms"`
	Count int64   `json:"count"`
}

// binBounds is the 1-2-5 ladder of histogram bins, 10µs to 50s.
var binBounds = func() []time.Duration {
	var b []time.Duration
	for d := 10 * time.Microsecond; d <= 50*time.Second; d *= 10 {
		b = append(b, d, 2*d, 5*d)
	}
	return b
}()

func (s *stats) report(c Config, target string, elapsed time.Duration, unsent int64) *Report {
	r := &Report{
		Target:          target,
		TargetRate:      c.Rate,
		DurationSeconds: elapsed.Seconds(),
		Sent:            s.sent.Load(),
		Completed:       s.completed,
		Errors:          s.errors,
		Unsent:          unsent,
		Timeouts:        s.failures[failureTimeout],
		Status:          map[string]int64{},
		TransportErrors: map[string]int64{},
		Outcomes:        map[string]int64{},
		Latency: Latency{
			P50:  ms(s.all.Quantile(0.50)),
			P90:  ms(s.all.Quantile(0.90)),
			P99:  ms(s.all.Quantile(0.99)),
			P999: ms(s.all.Quantile(0.999)),
			Max:  ms(s.all.Max()),
			Mean: ms(s.all.Mean()),
		},
	}
	if elapsed > 0 {
		r.AchievedRate = float64(s.completed) / elapsed.Seconds()
	}
	for code, n := range s.status {
		if n > 0 {
			r.Status[strconv.Itoa(code)] = n
		}
	}
	for f, n := range s.failures {
		if n > 0 {
			r.TransportErrors[failureNames[f]] = n
		}
	}
	for o, n := range s.outcomes {
		if n > 0 && outcome(o) != outcomeNone {
			r.Outcomes[outcomeNames[o]] = n
		}
	}
	counts := s.all.Bins(binBounds)
	for i, b := range binBounds {
		r.Histogram = append(r.Histogram, Bin{LeMs: ms(b), Count: int64(counts[i])})
	}
	if over := counts[len(binBounds)]; over > 0 {
		r.Histogram = append(r.Histogram, Bin{LeMs: ms(s.all.Max()), Count: int64(over)})
	}
	return r
}

// writeFile writes r as indented JSON to path.
func (r *Report) writeFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// print writes the human-readable report.
func (r *Report) print(out io.Writer) {
	w := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }
	w("\n--- report: %s\n", r.Target)
	w("rate        target %.1f/s  achieved %.1f/s  over %.2fs\n", r.TargetRate, r.AchievedRate, r.DurationSeconds)
	w("requests    sent %d  completed %d  errors %d  unsent %d\n", r.Sent, r.Completed, r.Errors, r.Unsent)
	l := r.Latency
	w("latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  (from scheduled send time)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	w("status      %s\n", counts(r.Status, true))
	w("transport   %s  (timeouts %d)\n", counts(r.TransportErrors, false), r.Timeouts)
	w("outcomes    %s\n", counts(r.Outcomes, false))
	if r.Unsent > 0 {
		w("warning: %d requests fell due but were never sent because every worker was busy; raise --workers\n", r.Unsent)
	}
	r.printHistogram(out)
}

// printHistogram draws the non-empty span of the bins as bars of '#'.
func (r *Report) printHistogram(out io.Writer) {
	const width = 50
	first, last := -1, -1
	var most, total int64
	for i, b := range r.Histogram {
		if b.Count > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
		most = max(most, b.Count)
		total += b.Count
	}
	if first < 0 {
		fmt.Fprintln(out, "histogram   (no completed requests)")
		return
	}
	fmt.Fprintln(out, "histogram   latency ms (log buckets)")
	var cum int64
	for _, b := range r.Histogram[first : last+1] {
		cum += b.Count
		bar := int(math.Ceil(float64(b.Count) * width / float64(most)))
		fmt.Fprintf(out, "  <= %9s %9d %6.2f%% %7.2f%% |%s\n", strconv.FormatFloat(b.LeMs, 'g', 4, 64), b.Count,
			100*float64(b.Count)/float64(total), 100*float64(cum)/float64(total), strings.Repeat("#", bar))
	}
}

// counts formats a count map as "k=v k=v", keys sorted (numerically when
// numeric), or "none".
func counts(m map[string]int64, numeric bool) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if numeric && len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s=%d", k, m[k])
	}
	return sb.String()
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// formatMs formats d as milliseconds with three significant decimals.
func formatMs(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 3, 64) + "ms" }
