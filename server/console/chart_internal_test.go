package console

import (
	"strings"
	"testing"
	"time"
)

func TestSeriesBuckets(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	s := newSeries(start, time.Minute, 3)
	s.add(start.Add(10*time.Second), "allow", false)
	s.add(start.Add(70*time.Second), "deny", true)
	s.add(start.Add(80*time.Second), "deny", false)
	s.add(start.Add(-time.Second), "allow", false)  // before the range: dropped
	s.add(start.Add(3*time.Minute), "allow", false) // after it: dropped
	if got := s.counts[0]["allow"]; got != 1 {
		t.Errorf("bucket 0 allow = %d, want 1", got)
	}
	if got, deg := s.counts[1]["deny"], s.degr[1]; got != 2 || deg != 1 {
		t.Errorf("bucket 1 deny = %d degraded %d, want 2 and 1", got, deg)
	}
	if n := strings.Count(s.stackedBars(), "<rect"); n != 2 {
		t.Errorf("%d bars drawn, want 2 (one per non-empty outcome and minute)", n)
	}
}

func TestChartLabelsEscaped(t *testing.T) {
	svg := hbars([]string{`<img src=x onerror=alert(1)>`, `"><script>alert(2)</script>`}, []int{3, 1})
	if strings.Contains(svg, "<img") || strings.Contains(svg, "<script") {
		t.Errorf("unescaped label in the chart:\n%s", svg)
	}
	if !strings.Contains(svg, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("label missing:\n%s", svg)
	}
}
