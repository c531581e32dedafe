package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riskengine/risk/engine"
)

// StoreStats are the feature store's figures at one moment. server does
// not import features: main adapts features.Stats into this.
type StoreStats struct {
	// CacheHits and CacheMisses count feature-window lookups served from
	// memory and from Badger since start.
	CacheHits, CacheMisses uint64
	// CachedWindows is the number of entities in memory, each with the
	// windows of its features.
	CachedWindows int
	// LSMBytes and VLogBytes are Badger's on-disk sizes.
	LSMBytes, VLogBytes int64
	// LastSeq is the sequence number of the last committed decision.
	LastSeq uint64
}

// MetricsConfig configures Metrics.
type MetricsConfig struct {
	// StoreStats returns the feature store's figures; it is called once per
	// scrape. nil leaves them out.
	StoreStats func() StoreStats
	// Build is exported as the risk_build_info gauge (always 1, the build
	// in its labels). The zero value leaves it out.
	Build BuildInfo
}

// BuildInfo names the running build.
type BuildInfo struct {
	// Version is the module version, such as v1.4.0 or (devel).
	Version string
	// Commit is the VCS revision the binary was built from.
	Commit string
	// GoVersion is the Go toolchain that built it, such as go1.25.1.
	GoVersion string
}

// Metrics is the service's Prometheus instrumentation in a registry of its
// own (nothing global): decisions by outcome, decision latency, rule hits
// and errors, degraded and fallback decisions, decision-store latency,
// feature cache and Badger figures, HTTP requests by route and status, and
// the Go runtime. It implements engine.Observer. It is safe for concurrent
// use.
//
// Every metric is named risk_*; see docs/operations.md for the list.
type Metrics struct {
	reg *prometheus.Registry

	decisions    *prometheus.CounterVec   // outcome
	degraded     *prometheus.CounterVec   // cause
	fallback     prometheus.Counter       //
	latency      prometheus.Histogram     //
	ruleHits     *prometheus.CounterVec   // rule, mode
	ruleErrors   *prometheus.CounterVec   // rule
	store        *prometheus.HistogramVec // op
	httpRequests *prometheus.CounterVec   // method, route, status
	httpLatency  *prometheus.HistogramVec // method, route
}

var _ engine.Observer = (*Metrics)(nil)

// latencyBuckets cover a decision budget of tens of milliseconds, in
// seconds.
var latencyBuckets = []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// NewMetrics returns Metrics with every collector registered.
func NewMetrics(cfg MetricsConfig) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_decisions_total", Help: "Decisions made, by outcome (replays are not counted).",
		}, []string{"outcome"}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_decisions_degraded_total",
			Help: "Degraded decisions, by the code of their first cause (engine.Causes: deadline, feature_store_unavailable, state_corrupt, ...). Each decision counts once.",
		}, []string{"cause"}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "risk_decisions_fallback_total", Help: "Degraded decisions whose outcome was raised to the fallback.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "risk_decision_duration_seconds", Help: "Time to decide a payment, commit included.", Buckets: latencyBuckets,
		}),
		ruleHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_rule_hits_total", Help: "Rule matches, by rule id and mode (shadow rules included).",
		}, []string{"rule", "mode"}),
		ruleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_rule_errors_total", Help: "Rule evaluations that failed or were cut short by the budget, by rule id.",
		}, []string{"rule"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "risk_store_duration_seconds", Help: "Feature store calls on the decision path: features (read), lookup (idempotency), commit (durable write).", Buckets: latencyBuckets,
		}, []string{"op"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_http_requests_total", Help: "HTTP requests, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "risk_http_request_duration_seconds", Help: "HTTP request duration, by method and route pattern.", Buckets: latencyBuckets,
		}, []string{"method", "route"}),
	}
	for _, o := range []engine.Outcome{engine.Allow, engine.Challenge, engine.Deny} {
		m.decisions.WithLabelValues(string(o))
	}
	for _, cause := range engine.Causes() {
		m.degraded.WithLabelValues(string(cause)) // every cause exported from the start, at 0
	}
	m.reg.MustRegister(m.decisions, m.degraded, m.fallback, m.latency, m.ruleHits, m.ruleErrors, m.store,
		m.httpRequests, m.httpLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.StoreStats != nil {
		m.reg.MustRegister(newStoreCollector(cfg.StoreStats))
	}
	if cfg.Build != (BuildInfo{}) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "risk_build_info", Help: "The running build, in its labels; always 1.",
			ConstLabels: prometheus.Labels{"version": cfg.Build.Version, "commit": cfg.Build.Commit, "go_version": cfg.Build.GoVersion},
		}, func() float64 { return 1 }))
	}
	return m
}

// Registry returns the registry, for other parts of the service to add
// their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4,
	})
}

// ObserveDecision implements engine.Observer.
func (m *Metrics) ObserveDecision(rec *engine.Record, elapsed time.Duration) {
	m.decisions.WithLabelValues(string(rec.Outcome)).Inc()
	m.latency.Observe(elapsed.Seconds())
	if rec.Degraded {
		cause := rec.DegradedCause
		if !cause.Valid() {
			cause = engine.CauseOther
		}
		m.degraded.WithLabelValues(string(cause)).Inc()
		if rec.DeterminedBy == "fallback" {
			m.fallback.Inc()
		}
	}
	for i := range rec.Rules {
		r := &rec.Rules[i]
		switch {
		case r.Error != "":
			m.ruleErrors.WithLabelValues(r.ID).Inc()
		case r.Matched:
			m.ruleHits.WithLabelValues(r.ID, string(r.Mode)).Inc()
		}
	}
}

// middleware counts and times every request by route pattern (never the
// raw path, which would make one series per decision id).
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			method = "other" // clients choose methods; labels must stay bounded
		}
		m.httpRequests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.httpLatency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}

// TimeFeatures returns src with its calls timed as
// risk_store_duration_seconds{op="features"}.
func (m *Metrics) TimeFeatures(src engine.FeatureSource) engine.FeatureSource {
	return timedFeatures{src: src, h: m.store.WithLabelValues("features")}
}

// TimeStore returns ds with its calls timed as
// risk_store_duration_seconds{op="lookup"} and {op="commit"}.
func (m *Metrics) TimeStore(ds engine.DecisionStore) engine.DecisionStore {
	return timedStore{ds: ds, lookup: m.store.WithLabelValues("lookup"), commit: m.store.WithLabelValues("commit")}
}

type timedFeatures struct {
	src engine.FeatureSource
	h   prometheus.Observer
}

func (t timedFeatures) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	start := time.Now()
	defer func() { t.h.Observe(time.Since(start).Seconds()) }()
	return t.src.Features(ctx, p, dst)
}

type timedStore struct {
	ds             engine.DecisionStore
	lookup, commit prometheus.Observer
}

func (t timedStore) Lookup(ctx context.Context, transactionID string) (*engine.Record, error) {
	start := time.Now()
	defer func() { t.lookup.Observe(time.Since(start).Seconds()) }()
	return t.ds.Lookup(ctx, transactionID)
}

func (t timedStore) Commit(ctx context.Context, rec *engine.Record) error {
	start := time.Now()
	defer func() { t.commit.Observe(time.Since(start).Seconds()) }()
	return t.ds.Commit(ctx, rec)
}

// storeCollector reads StoreStats once per scrape.
type storeCollector struct {
	stats                        func() StoreStats
	hits, misses, ratio, windows *prometheus.Desc
	lsm, vlog, lastSeq           *prometheus.Desc
}

func newStoreCollector(stats func() StoreStats) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{
		stats:   stats,
		hits:    d("risk_feature_cache_hits_total", "Feature-window lookups served from memory."),
		misses:  d("risk_feature_cache_misses_total", "Feature-window lookups that went to Badger."),
		ratio:   d("risk_feature_cache_hit_ratio", "Hits over lookups since start (absent before the first lookup)."),
		windows: d("risk_feature_cached_windows", "Entities held in memory, each with the windows of its features (the --cache-entries budget)."),
		lsm:     d("risk_badger_lsm_bytes", "Size of Badger's LSM tree on disk."),
		vlog:    d("risk_badger_vlog_bytes", "Size of Badger's value log on disk."),
		lastSeq: d("risk_decision_last_seq", "Sequence number of the last committed decision."),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.ratio, c.windows, c.lsm, c.vlog, c.lastSeq} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.CacheHits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.CacheMisses))
	if total := s.CacheHits + s.CacheMisses; total > 0 {
		ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, float64(s.CacheHits)/float64(total))
	}
	ch <- prometheus.MustNewConstMetric(c.windows, prometheus.GaugeValue, float64(s.CachedWindows))
	ch <- prometheus.MustNewConstMetric(c.lsm, prometheus.GaugeValue, float64(s.LSMBytes))
	ch <- prometheus.MustNewConstMetric(c.vlog, prometheus.GaugeValue, float64(s.VLogBytes))
	ch <- prometheus.MustNewConstMetric(c.lastSeq, prometheus.GaugeValue, float64(s.LastSeq))
}
