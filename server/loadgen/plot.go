package loadgen

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot defaults and limits, in pixels.
const (
	DefaultPlotWidth  = 800
	DefaultPlotHeight = 500
	minPlotWidth      = 240
	minPlotHeight     = 160
	maxPlotSide       = 8000
)

// series is one plotted percentile.
type series struct {
	name  string
	color color.RGBA
	value func(Latency) float64
}

var plotted = [...]series{
	{"p50", color.RGBA{31, 119, 180, 255}, func(l Latency) float64 { return l.P50 }},
	{"p99", color.RGBA{255, 127, 14, 255}, func(l Latency) float64 { return l.P99 }},
	{"p99.9", color.RGBA{214, 39, 40, 255}, func(l Latency) float64 { return l.P999 }},
}

// runPlot is "risk loadgen plot [--out file.png] [--width W] [--height H]
// report.json...". Flags may come before or between the report files.
func runPlot(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen plot", flag.ContinueOnError)
	fs.SetOutput(out)
	path := fs.String("out", "latency.png", "PNG `file` to write")
	width := fs.Int("width", DefaultPlotWidth, "image width in pixels")
	height := fs.Int("height", DefaultPlotHeight, "image height in pixels")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(files) == 0:
		return errors.New("plot: no report files given")
	case *width < minPlotWidth || *height < minPlotHeight || *width > maxPlotSide || *height > maxPlotSide:
		return fmt.Errorf("plot: size %dx%d: want %dx%d to %dx%d", *width, *height, minPlotWidth, minPlotHeight, maxPlotSide, maxPlotSide)
	}
	reports := make([]Report, 0, len(files))
	for _, f := range files {
		r, err := readReport(f)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	img, err := drawPlot(reports, *width, *height)
	if err != nil {
		return err
	}
	if err := writePNG(*path, img); err != nil {
		return err
	}
	fmt.Fprintf(out, "plot of %d reports written to %s\n", len(reports), *path)
	return nil
}

func readReport(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{}, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return Report{}, fmt.Errorf("read report %s: %w", path, err)
	}
	return r, nil
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	return nil
}

// drawPlot draws p50, p99 and p99.9 latency (log y, ms) against the offered
// rate (linear x, decisions/s asked for), one line per percentile, with a
// legend, using gonum.org/v1/plot. The offered rate, not the achieved one,
// keeps the x axis in the order the load rose: past saturation the achieved
// rate stalls or falls while latency climbs, and the curve would fold back
// on itself.
func drawPlot(reports []Report, width, height int) (image.Image, error) {
	reports = slices.Clone(reports)
	slices.SortFunc(reports, func(a, b Report) int { return cmp.Compare(a.TargetRate, b.TargetRate) })
	lo, hi := math.Inf(1), math.Inf(-1)
	xmax := 0.0
	for _, r := range reports {
		xmax = max(xmax, r.TargetRate)
		for _, s := range plotted {
			if v := s.value(r.Latency); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return nil, errors.New("plot: no report has latency data")
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}

	p := plot.New()
	p.Title.Text = "latency (ms) vs rate"
	p.X.Label.Text = "offered decisions/s"
	p.X.Min, p.X.Max = 0, max(xmax, 1)*1.05
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = decadeTicks{}
	p.Y.Min, p.Y.Max = math.Pow(10, ylo), math.Pow(10, yhi)
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)

	for _, s := range plotted {
		var xys plotter.XYs
		for _, r := range reports {
			if v := s.value(r.Latency); v > 0 {
				xys = append(xys, plotter.XY{X: r.TargetRate, Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		line.Color, line.Width = s.color, vg.Points(2)
		points.Color, points.Shape, points.Radius = s.color, draw.CircleGlyph{}, vg.Points(3)
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}

	c := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, width, height))))
	p.Draw(draw.New(c))
	return c.Image(), nil
}

// decadeTicks marks a log axis with a labelled tick per power of ten and
// unlabelled ones at 2..9 times it. plot.LogTicks loses the lowest decade
// below 1 to floating point (log10(0.1) truncates to 0).
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo) + 1e-9); e <= math.Ceil(math.Log10(hi)-1e-9); e++ {
		v := math.Pow(10, e)
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', max(0, -int(e)), 64)})
		for m := 2.0; m < 10 && v*m <= hi; m++ {
			ticks = append(ticks, plot.Tick{Value: v * m})
		}
	}
	return ticks
}
