package backtest_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/riskengine/risk/admin/backtest"
)

// BenchmarkReadEvents measures decoding the replay data set, one event per
// line, as a backtest upload or the CLI reads it.
func BenchmarkReadEvents(b *testing.B) {
	data, err := os.ReadFile(datasetPath)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Count(data, []byte("\n"))
	var events []backtest.Event
	for b.Loop() {
		if events, err = backtest.ReadEvents(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	if len(events) != lines {
		b.Fatalf("read %d events, want %d", len(events), lines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(events)*b.N), "ns/event")
}
