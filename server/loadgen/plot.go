package loadgen

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
)

// Plot defaults and limits, in pixels.
const (
	DefaultPlotWidth  = 800
	DefaultPlotHeight = 500
	minPlotWidth      = 240
	minPlotHeight     = 160
	maxPlotSide       = 8000
)

var (
	white    = color.RGBA{255, 255, 255, 255}
	black    = color.RGBA{0, 0, 0, 255}
	grid     = color.RGBA{225, 225, 225, 255}
	faint    = color.RGBA{242, 242, 242, 255}
	textGray = color.RGBA{60, 60, 60, 255}
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
// legend. The offered rate, not the achieved one, keeps the x axis in the
// order the load rose: past saturation the achieved rate stalls or falls
// while latency climbs, and the curve would fold back on itself.
func drawPlot(reports []Report, width, height int) (*image.RGBA, error) {
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
	xstep := niceStep(max(xmax, 1) * 1.05 / 5)
	xhi := math.Ceil(max(xmax, 1)*1.05/xstep) * xstep

	scale := 1
	if width >= 600 && height >= 400 {
		scale = 2
	}
	lineH := glyphH * scale
	yLabels := 0
	for e := ylo; e <= yhi; e++ {
		yLabels = max(yLabels, textWidth(formatTick(math.Pow(10, e), e), scale))
	}
	decimals := max(0, -int(math.Floor(math.Log10(xstep))))
	lastX := textWidth(strconv.FormatFloat(xhi, 'f', decimals, 64), scale)
	x0, x1 := yLabels+12*scale, width-max(12*scale, lastX/2+4)
	y0, y1 := 2*lineH+12, height-2*lineH-14*scale-8
	px := func(x float64) int { return x0 + int(math.Round(x/xhi*float64(x1-x0))) }
	py := func(v float64) int {
		return y1 - int(math.Round((math.Log10(v)-ylo)/(yhi-ylo)*float64(y1-y0)))
	}

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)

	// Y: a labelled line per decade, faint lines at 2..9 times it.
	for e := ylo; e <= yhi; e++ {
		v := math.Pow(10, e)
		y := py(v)
		if e < yhi {
			for m := 2.0; m < 10; m++ {
				fillRect(img, x0+1, py(v*m), x1-x0, 1, faint)
			}
		}
		fillRect(img, x0+1, y, x1-x0, 1, grid)
		fillRect(img, x0-5*scale, y, 5*scale, scale, black)
		label := formatTick(v, e)
		drawText(img, x0-7*scale-textWidth(label, scale), y-lineH/2, label, scale, textGray)
	}
	// X: ticks at a 1-2-5 step.
	for k := 0.0; k*xstep <= xhi*(1+1e-9); k++ {
		x := px(k * xstep)
		fillRect(img, x, y0, 1, y1-y0, grid)
		fillRect(img, x, y1, scale, 5*scale, black)
		label := strconv.FormatFloat(k*xstep, 'f', decimals, 64)
		drawText(img, x-textWidth(label, scale)/2, y1+7*scale, label, scale, textGray)
	}
	// Axes and labels.
	fillRect(img, x0, y0, scale, y1-y0+scale, black)
	fillRect(img, x0, y1, x1-x0, scale, black)
	title := "latency (ms) vs rate"
	drawText(img, (width-textWidth(title, scale))/2, 6, title, scale, black)
	xlabel := "offered decisions/s"
	drawText(img, (x0+x1-textWidth(xlabel, scale))/2, height-lineH-4, xlabel, scale, textGray)

	// Lines and points, one series at a time.
	for _, s := range plotted {
		prevX, prevY, have := 0, 0, false
		for _, r := range reports {
			v := s.value(r.Latency)
			if !(v > 0) {
				continue
			}
			x, y := px(r.TargetRate), py(v)
			if have {
				drawLine(img, prevX, prevY, x, y, scale+1, s.color)
			}
			fillRect(img, x-3*scale, y-3*scale, 6*scale+1, 6*scale+1, s.color)
			prevX, prevY, have = x, y, true
		}
	}

	// Legend in the top-left corner of the plot area: lines rise to the right.
	lx, ly := x0+10*scale, y0+6*scale
	boxW := 20*scale + textWidth("p99.9", scale) + 12*scale
	boxH := len(plotted)*(lineH+4*scale) + 4*scale
	fillRect(img, lx, ly, boxW, boxH, white)
	strokeRect(img, lx, ly, boxW, boxH, grid)
	for i, s := range plotted {
		y := ly + 4*scale + i*(lineH+4*scale)
		fillRect(img, lx+4*scale, y+lineH/2-scale, 12*scale, 2*scale, s.color)
		drawText(img, lx+20*scale, y, s.name, scale, black)
	}
	return img, nil
}

// niceStep returns the 1, 2 or 5 times a power of ten nearest above raw.
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// formatTick formats 10^e without an exponent: 0.01, 1, 1000.
func formatTick(v, e float64) string {
	return strconv.FormatFloat(v, 'f', max(0, -int(e)), 64)
}

// drawLine draws a line of width w from (x0, y0) to (x1, y1) (Bresenham).
func drawLine(img *image.RGBA, x0, y0, x1, y1, w int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0-w/2, y0-w/2, w, w, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func strokeRect(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	fillRect(img, x, y, w, 1, c)
	fillRect(img, x, y+h-1, w, 1, c)
	fillRect(img, x, y, 1, h, c)
	fillRect(img, x+w-1, y, 1, h, c)
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
