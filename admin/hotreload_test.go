package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/riskengine/risk/rules"
)

// load posts decisions from workers goroutines until stop is called, and
// checks that each one is answered 200 and names a rule set version that
// was live while it ran. Versions go live in number order, so that is any
// version between the one live before the request and the one live after.
type load struct {
	h             *harness
	stop          chan struct{}
	wg            sync.WaitGroup
	total, failed atomic.Int64
	mu            sync.Mutex
	problems      []string
	versionsSeen  map[int64]bool
}

func startLoad(h *harness, workers int) *load {
	l := &load{h: h, stop: make(chan struct{}), versionsSeen: map[int64]bool{}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(with(payment(), "card.fingerprint", fmt.Sprintf("fp_%d_%d", w, i)))
			}
		}()
	}
	return l
}

func (l *load) one(p map[string]any) {
	lo := l.h.liveVersion()
	status, body, err := l.h.send(http.MethodPost, "/v1/decisions", p)
	hi := l.h.liveVersion()
	l.total.Add(1)
	var d decision
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &d)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil || status != http.StatusOK:
		l.failed.Add(1)
		l.problems = append(l.problems, fmt.Sprintf("status %d %s: %v", status, body, err))
	case d.RulesetVersion < lo || d.RulesetVersion > hi:
		l.problems = append(l.problems, fmt.Sprintf("decided on version %d, live were %d..%d", d.RulesetVersion, lo, hi))
	default:
		l.versionsSeen[d.RulesetVersion] = true
	}
}

// wait stops the load and returns what went wrong.
func (l *load) wait() []string {
	close(l.stop)
	l.wg.Wait()
	return l.problems
}

func TestHotReloadUnderLoad(t *testing.T) {
	h := newHarness(t)
	const publishes = 50
	l := startLoad(h, 4)
	for l.total.Load() < 20 {
		l.one(payment()) // let the load get going
	}
	for i := range publishes {
		body := rule{ID: "new_account_large_amount", Expression: fmt.Sprintf("account.age_days < 7 && amount > %d", 50000+i), Action: "score", Score: 30}
		h.must(http.StatusOK, http.MethodPut, "/admin/rules/new_account_large_amount", body, nil)
		var v versionInfo
		h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": fmt.Sprint(i)}, &v)
		if v.Version != int64(i+2) {
			t.Fatalf("publish %d made version %d", i, v.Version)
		}
		if live := h.liveVersion(); live != v.Version {
			t.Fatalf("version %d published but %d live", v.Version, live)
		}
		// Interleave decisions with the publishes, so many versions serve.
		l.one(payment())
	}
	problems := l.wait()
	for _, p := range problems[:min(len(problems), 10)] {
		t.Error(p)
	}
	if n := len(problems); n > 0 {
		t.Fatalf("%d of %d decisions went wrong", n, l.total.Load())
	}
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed decisions", l.failed.Load())
	}
	if len(l.versionsSeen) < publishes/2 {
		t.Errorf("decisions named only %d versions over %d publishes", len(l.versionsSeen), publishes)
	}
	t.Logf("%d decisions over %d publishes, %d versions seen", l.total.Load(), publishes, len(l.versionsSeen))
}

// manyRules returns a rule set of n varied rules.
func manyRules(n int) rules.Spec {
	spec := rules.Spec{ChallengeThreshold: 400, DenyThreshold: 800}
	for i := range n {
		var expr string
		switch i % 5 {
		case 0:
			expr = fmt.Sprintf(`amount > %d && card.country == "US"`, 1000+i)
		case 1:
			expr = fmt.Sprintf(`features.card_attempts_1h > %d || features.device_distinct_cards_24h > %d`, i%7, i%11)
		case 2:
			expr = fmt.Sprintf(`in_list("blocked_cards", card.fingerprint) && amount > %d`, i)
		case 3:
			expr = fmt.Sprintf(`device.ip_country in ["RU", "NG", "BR"] && amount > %d`, i*10)
		case 4:
			expr = fmt.Sprintf(`hour_of_day(occurred_at, "UTC") < %d && account.age_days < %d.5`, i%24, i%30)
		}
		spec.Rules = append(spec.Rules, rules.Rule{ID: fmt.Sprintf("rule_%04d", i), Expression: expr, Action: "score", Score: 1, Reason: "many"})
	}
	return spec
}

// BenchmarkPublish1000Rules measures POST /admin/ruleset/publish of a
// 1,000-rule draft, from request to live, under a light decision load; it
// reports the decisions that failed meanwhile (want 0).
func BenchmarkPublish1000Rules(b *testing.B) {
	h := newHarness(b)
	data, err := rules.MarshalFile(rules.File{Spec: manyRules(1000)})
	if err != nil {
		b.Fatal(err)
	}
	h.must(http.StatusOK, http.MethodPost, "/admin/ruleset/import", data, nil)
	l := startLoad(h, 2)
	b.ResetTimer()
	for b.Loop() {
		var v versionInfo
		h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", nil, &v)
		if v.Rules != 1000 || h.liveVersion() != v.Version {
			b.Fatalf("published %+v, live %d", v, h.liveVersion())
		}
	}
	b.StopTimer()
	problems := l.wait()
	b.ReportMetric(float64(l.failed.Load()), "failed_decisions")
	b.ReportMetric(float64(len(problems)), "problems")
	if len(problems) > 0 {
		b.Errorf("%d problems, first: %s", len(problems), problems[0])
	}
}
