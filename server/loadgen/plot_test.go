package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/riskengine/risk/server/loadgen"
)

// writeReport writes a report for one rate and returns its path.
func writeReport(tb testing.TB, dir string, rate float64, l loadgen.Latency) string {
	tb.Helper()
	b, err := json.Marshal(loadgen.Report{TargetRate: rate, AchievedRate: rate * 0.98, Completed: 1000, Latency: l})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("report-%g.json", rate))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestPlot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	low := writeReport(t, dir, 500, loadgen.Latency{P50: 0.8, P90: 1.5, P99: 4, P999: 9, Max: 12})
	high := writeReport(t, dir, 2000, loadgen.Latency{P50: 3, P90: 20, P99: 180, P999: 900, Max: 1200})
	png1 := filepath.Join(dir, "a.png")
	png2 := filepath.Join(dir, "b.png")

	tests := []struct {
		name          string
		args          []string
		path          string
		width, height int
	}{
		{"flags first", []string{"--out", png1, "--width", "640", "--height", "400", low, high}, png1, 640, 400},
		{"flags between files, default size", []string{high, "--out", png2, low}, png2, loadgen.DefaultPlotWidth, loadgen.DefaultPlotHeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := loadgen.Run(context.Background(), append([]string{"plot"}, tt.args...), &out); err != nil {
				t.Fatalf("plot: %v", err)
			}
			f, err := os.Open(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode %s: %v", tt.path, err)
			}
			if b := img.Bounds(); b.Dx() != tt.width || b.Dy() != tt.height {
				t.Errorf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.width, tt.height)
			}
			// One color per percentile line, besides the grays of axes and text.
			colors := map[[3]uint32]int{}
			for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
				for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
					r, g, b, _ := img.At(x, y).RGBA()
					if max(r, g, b)-min(r, g, b) > 0x4000 {
						colors[[3]uint32{r >> 8, g >> 8, b >> 8}]++
					}
				}
			}
			lines := 0
			for _, n := range colors {
				if n > 50 {
					lines++
				}
			}
			if lines < 3 {
				t.Errorf("found %d colors drawn over 50 pixels (%v), want one per percentile (3)", lines, colors)
			}
		})
	}
}

func TestPlotRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeReport(t, dir, 100, loadgen.Latency{P50: 1, P99: 2, P999: 3})
	empty := writeReport(t, dir, 200, loadgen.Latency{})
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"latency_ms":`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.png")
	tests := []struct {
		name string
		args []string
	}{
		{"no reports", []string{"--out", out}},
		{"missing report", []string{"--out", out, filepath.Join(dir, "nope.json")}},
		{"broken report", []string{"--out", out, good, broken}},
		{"no latency data", []string{"--out", out, empty}},
		{"too small", []string{"--out", out, "--width", "10", good}},
		{"unknown flag", []string{"--out", out, "--dpi", "3", good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := loadgen.Run(context.Background(), append([]string{"plot"}, tt.args...), &buf); err == nil {
				t.Errorf("plot %q succeeded, want an error", tt.args)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("plot %q wrote %s despite failing", tt.args, out)
			}
		})
	}
}
