package console

import (
	"fmt"
	"html"
	"strings"
	"time"
)

// Charts are inline SVG drawn on the server: no script, nothing for the
// CSP to allow, and no charting library for three simple shapes (stacked
// bars, a line, horizontal bars). Every text put in is HTML-escaped.

// outcomeColors are the fill classes of the outcomes, bottom up.
var outcomeOrder = []string{"allow", "challenge", "deny"}

// series is one bucketed count per outcome over time.
type series struct {
	start  time.Time
	step   time.Duration
	counts []map[string]int
	degr   []int
}

func newSeries(start time.Time, step time.Duration, n int) *series {
	s := &series{start: start, step: step, counts: make([]map[string]int, n), degr: make([]int, n)}
	for i := range s.counts {
		s.counts[i] = map[string]int{}
	}
	return s
}

func (s *series) add(at time.Time, outcome string, degraded bool) {
	if at.Before(s.start) {
		return // (a negative offset would truncate to bucket 0)
	}
	i := int(at.Sub(s.start) / s.step)
	if i >= len(s.counts) {
		return
	}
	s.counts[i][outcome]++
	if degraded {
		s.degr[i]++
	}
}

const (
	chartW, chartH = 900, 220
	padL, padB     = 48, 24
)

// stackedBars draws decisions per minute by outcome.
func (s *series) stackedBars() string {
	perMin := s.step.Minutes()
	max := 0.0
	for _, m := range s.counts {
		t := 0
		for _, v := range m {
			t += v
		}
		if f := float64(t) / perMin; f > max {
			max = f
		}
	}
	if max == 0 {
		max = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="decisions per minute by outcome">`, chartW, chartH)
	s.axes(&b, max, "/min")
	bw := float64(chartW-padL) / float64(len(s.counts))
	plotH := float64(chartH - padB - 8)
	for i, m := range s.counts {
		y := float64(chartH - padB)
		for _, o := range outcomeOrder {
			h := float64(m[o]) / perMin / max * plotH
			if h <= 0 {
				continue
			}
			y -= h
			fmt.Fprintf(&b, `<rect class="o-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s %s: %d</title></rect>`,
				o, float64(padL)+float64(i)*bw, y, max1(bw-1, 1), h, html.EscapeString(s.start.Add(time.Duration(i)*s.step).UTC().Format("15:04")), o, m[o])
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// degradedLine draws the share of degraded decisions per bucket.
func (s *series) degradedLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart small" viewBox="0 0 %d %d" role="img" aria-label="degraded rate">`, chartW, chartH/2+padB)
	h := float64(chartH/2 - 8)
	base := float64(chartH / 2)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%.0f" x2="%d" y2="%.0f"/>`, padL, base, chartW, base)
	fmt.Fprintf(&b, `<text class="label" x="2" y="12">100%%</text><text class="label" x="2" y="%.0f">0%%</text>`, base)
	bw := float64(chartW-padL) / float64(len(s.counts))
	var pts []string
	for i, m := range s.counts {
		t := 0
		for _, v := range m {
			t += v
		}
		r := 0.0
		if t > 0 {
			r = float64(s.degr[i]) / float64(t)
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(padL)+(float64(i)+0.5)*bw, base-r*h))
	}
	fmt.Fprintf(&b, `<polyline class="degraded" points="%s"/>`, strings.Join(pts, " "))
	b.WriteString(`</svg>`)
	return b.String()
}

func (s *series) axes(b *strings.Builder, max float64, unit string) {
	base := chartH - padB
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, base, chartW, base)
	fmt.Fprintf(b, `<text class="label" x="2" y="14">%s%s</text><text class="label" x="2" y="%d">0</text>`,
		html.EscapeString(trimFloat(max)), unit, base)
	n := len(s.counts)
	for _, i := range []int{0, n / 2, n - 1} {
		x := float64(padL) + float64(i)*float64(chartW-padL)/float64(n)
		anchor := "start"
		if i == n-1 {
			x, anchor = float64(chartW), "end"
		}
		fmt.Fprintf(b, `<text class="label" x="%.0f" y="%d" text-anchor="%s">%s</text>`, x, chartH-6, anchor, s.start.Add(time.Duration(i)*s.step).UTC().Format("15:04"))
	}
}

// hbars draws labelled horizontal bars (top rules by hits).
func hbars(labels []string, values []int) string {
	if len(labels) == 0 {
		return ""
	}
	max := 1
	for _, v := range values {
		if v > max {
			max = v
		}
	}
	rowH := 22
	h := rowH*len(labels) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="top rules by hits">`, chartW, h)
	for i, l := range labels {
		y := i*rowH + 2
		w := float64(values[i]) / float64(max) * float64(chartW-260)
		fmt.Fprintf(&b, `<text class="label" x="0" y="%d">%s</text>`, y+15, html.EscapeString(l))
		fmt.Fprintf(&b, `<rect class="hits" x="220" y="%d" width="%.1f" height="%d"/>`, y+2, max1(w, 1), rowH-6)
		fmt.Fprintf(&b, `<text class="label" x="%.0f" y="%d">%d</text>`, 224+w, y+15, values[i])
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func max1(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

func trimFloat(f float64) string {
	if f >= 10 {
		return fmt.Sprintf("%.0f", f)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
