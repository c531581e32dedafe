package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/riskengine/risk/engine"
)

// ready waits until the page's scripts (htmx, console.js) are in place,
// before a test types or presses keys.
var ready = chromedp.WaitReady(chromedp.CSS(`html[data-ready]`))

// The XSS payloads of the issue, put where payments and analysts write.
const (
	xssImg  = `<img src=x onerror=alert(1)>`
	xssAttr = `"><script>alert(2)</script>`
)

// TestConsole walks the console's flows in one browser, one after the
// other, on one service: each step builds on the state the one before left.
func TestConsole(t *testing.T) {
	e := newConsoleEnv(t)
	start := time.Now()
	// Every challenge opens a review item.
	if code := e.api(engine.RoleAdmin, http.MethodPut, "/admin/reviews/policy",
		map[string]any{"rules": []any{map[string]any{"name": "challenges", "outcomes": []string{"challenge"}}}}, nil); code != http.StatusOK {
		t.Fatalf("review policy = %d", code)
	}
	first := e.decide(consolePayment("tx_console_1"))
	e.decide(consolePayment("tx_console_2"))
	xssPay := consolePayment(xssAttr)
	xssPay["attributes"] = map[string]any{"note": xssImg, xssAttr: "x"}
	xssDecision := e.decide(xssPay)

	step := func(name string, f func()) {
		t.Run(name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			f()
		})
		e.t = t
	}

	step("sign in, search, read a decision", func() {
		e.signIn(engine.RoleAnalyst)
		e.shot("overview")
		e.run("search",
			chromedp.Navigate(e.url+"/console/decisions"),
			chromedp.WaitVisible(chromedp.CSS(`#search`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=transaction_id]`), "tx_console_1"),
			chromedp.Click(chromedp.CSS(`#search-go`)),
		)
		// The list before the search already holds decision links: wait for the
		// results page itself, not for any link.
		e.waitFor("the results page", `location.search.includes("transaction_id=tx_console_1") && document.readyState === "complete"`)
		e.run("results", chromedp.WaitVisible(chromedp.CSS(`a.decision-link`)))
		if n := value(e, "count results", chromedp.Evaluate[int](`document.querySelectorAll("a.decision-link").length`)); n != 1 {
			e.t.Fatalf("search by transaction id found %d decisions, want 1", n)
		}
		e.shot("decisions")
		e.run("open", chromedp.Click(chromedp.CSS(`a.decision-link`)), chromedp.WaitVisible(chromedp.CSS(`#decision-id`)))
		if got := e.text("#decision-id"); got != first {
			e.t.Errorf("decision page shows %q, want %q", got, first)
		}
		rules := e.text("table.rules")
		for _, want := range []string{"card_country_mismatch", "matched", "not matched", "card.country != device.ip_country", "shadow"} {
			if !strings.Contains(rules, want) {
				e.t.Errorf("rules table lacks %q:\n%s", want, rules)
			}
		}
		if feats := e.text("#features"); !strings.Contains(feats, "card_attempts_10m") {
			e.t.Errorf("feature values lack card_attempts_10m:\n%s", feats)
		}
		e.shot("decision")
	})

	step("fix a misspelt field with the did-you-mean", func() {
		e.run("new rule",
			chromedp.Navigate(e.url+"/console/rules/new"),
			chromedp.WaitVisible(chromedp.CSS(`#f-expression`)),
			ready,
			chromedp.SendKeys(chromedp.CSS(`#f-id`), "big_amount"),
			chromedp.SendKeys(chromedp.CSS(`#f-name`), xssAttr),
			chromedp.SendKeys(chromedp.CSS(`#f-expression`), `amount > 10000 && card.contry == "US"`),
			chromedp.WaitVisible(chromedp.CSS(`#validation button.fix`)),
		)
		msg := e.text("#validation")
		if !strings.Contains(msg, "1:24") || !strings.Contains(msg, "did you mean `card.country`") {
			e.t.Errorf("validation = %q, want 1:24 and the did-you-mean", msg)
		}
		e.shot("rule-did-you-mean")
		e.run("apply the fix",
			chromedp.Click(chromedp.CSS(`#validation button.fix`)),
			chromedp.WaitVisible(chromedp.CSS(`#valid`)),
			chromedp.SetValue(chromedp.CSS(`#f-action`), "deny"),
			chromedp.SendKeys(chromedp.CSS(`#f-reason`), "big_amount"),
			chromedp.SendKeys(chromedp.CSS(`#f-message`), xssImg),
		)
		expr := value(e, "expression", chromedp.Value(chromedp.CSS(`#f-expression`)))
		if expr != `amount > 10000 && card.country == "US"` {
			e.t.Errorf("expression after the fix = %q", expr)
		}
		e.run("save", chromedp.Click(chromedp.CSS(`#save-rule`)), chromedp.WaitVisible(chromedp.CSS(`#rule-id`)))
		if got := e.text("#flash"); !strings.Contains(got, "Saved to the draft") {
			e.t.Errorf("after save: %q", got)
		}
	})

	step("try the rule against a past decision", func() {
		e.run("try",
			ready,
			chromedp.SendKeys(chromedp.CSS(`#try-decision`), first),
			chromedp.Click(chromedp.CSS(`#try-it`)),
			chromedp.WaitVisible(chromedp.CSS(`#try-outcome`)),
		)
		got := e.text("#try-outcome")
		if !strings.Contains(got, "Would answer deny") || !strings.Contains(got, "recorded then: challenge") || !strings.Contains(got, "big_amount") {
			e.t.Errorf("try it = %q", got)
		}
		e.shot("rule-try-it")
		var d struct {
			Decisions []any `json:"decisions"`
		}
		e.api(engine.RoleAnalyst, http.MethodGet, "/v1/decisions?limit=100", nil, &d)
		if len(d.Decisions) != 3 {
			e.t.Errorf("%d decisions stored after a dry run, want 3", len(d.Decisions))
		}
	})

	step("publish", func() {
		e.run("diff",
			chromedp.Navigate(e.url+"/console/ruleset/diff"),
			chromedp.WaitVisible(chromedp.CSS(`#publish-form`)),
		)
		if got := e.text("#diff"); !strings.Contains(got, "big_amount") {
			e.t.Errorf("diff = %q, want big_amount added", got)
		}
		e.shot("publish")
		e.run("publish",
			chromedp.SendKeys(chromedp.CSS(`#publish-comment`), "deny big amounts"),
			chromedp.Click(chromedp.CSS(`#publish`)),
			chromedp.WaitVisible(chromedp.CSS(`#versions`)),
		)
		if v := e.app.engine.Rules().Version(); v != 2 {
			e.t.Errorf("live version after publish = %d, want 2", v)
		}
	})

	step("roll back", func() {
		e.run("rollback",
			chromedp.Navigate(e.url+"/console/ruleset/versions/1"),
			chromedp.WaitVisible(chromedp.CSS(`#rollback`)),
			chromedp.Click(chromedp.CSS(`#rollback`)),
			chromedp.WaitVisible(chromedp.CSS(`#versions`)),
		)
		if v := e.app.engine.Rules().Version(); v != 3 {
			e.t.Errorf("live version after rollback = %d, want 3", v)
		}
		if got := e.text("#versions"); !strings.Contains(got, "v3") || !strings.Contains(got, "deny big amounts") {
			e.t.Errorf("versions = %q", got)
		}
		e.shot("versions")
	})

	step("run a backtest to the end", func() {
		e.run("start",
			chromedp.Navigate(e.url+"/console/backtests"),
			chromedp.WaitVisible(chromedp.CSS(`#backtest-form`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=version]`), "2"),
			chromedp.Click(chromedp.CSS(`#start-backtest`)),
			chromedp.WaitVisible(chromedp.CSS(`#progress`)),
			chromedp.WaitVisible(chromedp.CSS(`#backtest-result`)),
		)
		if got := e.text("#changed-count"); got != "3" {
			e.t.Errorf("changed decisions = %q, want 3 (the three challenges become denies)", got)
		}
		if n := value(e, "flipped links", chromedp.Evaluate[int](`document.querySelectorAll("#flipped a[href^='/console/decisions/']").length`)); n != 3 {
			e.t.Errorf("%d changed payments link to their decision, want 3", n)
		}
		if n := value(e, "rule rows", chromedp.Evaluate[int](`document.querySelectorAll("#backtest-result a[href='/console/rules/big_amount']").length`)); n != 1 {
			e.t.Errorf("%d rows of the backtest's rules link to big_amount, want 1", n)
		}
		e.shot("backtest")
	})

	step("add a list item with an expiry", func() {
		e.run("add",
			chromedp.Navigate(e.url+"/console/lists/blocked_cards"),
			chromedp.WaitVisible(chromedp.CSS(`#add-item`)),
			chromedp.SendKeys(chromedp.CSS(`#item-value`), "fp_console_stolen"),
			chromedp.SetValue(chromedp.CSS(`#item-expires`), "2030-01-02T03:04"),
			chromedp.SendKeys(chromedp.CSS(`#item-reason`), xssImg),
			chromedp.Click(chromedp.CSS(`#add-item-go`)),
			chromedp.WaitVisible(chromedp.CSS(`#flash .notice`)),
		)
		got := e.text("#items")
		if !strings.Contains(got, "fp_console_stolen") || !strings.Contains(got, "2030-01-02 03:04:00") {
			e.t.Errorf("items = %q", got)
		}
		e.shot("list")
	})

	step("review queue: claim and close with the keyboard", func() {
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ; ; <-tick.C {
			var q struct {
				Items []any `json:"items"`
			}
			e.api(engine.RoleAnalyst, http.MethodGet, "/admin/reviews?status=open", nil, &q)
			if len(q.Items) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("the review queue has %d open items, want the challenges", len(q.Items))
			}
		}
		e.run("open the first item with j, Enter",
			chromedp.Navigate(e.url+"/console/reviews"),
			chromedp.WaitVisible(chromedp.CSS(`#queue tr[data-review]`)),
			ready,
			chromedp.KeyEvent("j"),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(`#review-id`)),
			ready,
		)
		e.shot("review")
		e.run("claim with c", chromedp.KeyEvent("c"), chromedp.WaitVisible(chromedp.CSS(`#assignee`)), ready)
		if got := e.text("#assignee"); got != "console-analyst" {
			e.t.Errorf("assignee = %q", got)
		}
		e.run("close as legit with l", chromedp.KeyEvent("l"), chromedp.WaitVisible(chromedp.CSS(`#resolution`)), ready)
		if got := e.text("#resolution"); got != "legit" {
			e.t.Errorf("resolution = %q, want legit", got)
		}
		e.run("n opens the next open item", chromedp.KeyEvent("n"), chromedp.WaitVisible(chromedp.CSS(`#claim`)))
	})

	step("XSS payloads are inert", func() {
		checkInert := func(where string) {
			n := value(e, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll('img[src="x"]').length + Array.from(document.scripts).filter(s => !s.src).length`))
			if n != 0 {
				e.t.Errorf("%s: %d injected img/script elements", where, n)
			}
		}
		e.run("decision", chromedp.Navigate(e.url+"/console/decisions/"+xssDecision), chromedp.WaitVisible(chromedp.CSS(`#transaction-id`)))
		if got := e.text("#transaction-id"); got != xssAttr {
			e.t.Errorf("transaction id shown as %q, want the payload as text", got)
		}
		if got := e.text("#request"); !strings.Contains(got, xssImg) {
			e.t.Errorf("request lacks the payload as text: %q", got)
		}
		checkInert("decision")
		e.run("search", chromedp.Navigate(e.url+"/console/decisions?transaction_id="+url.QueryEscape(xssAttr)), chromedp.WaitVisible(chromedp.CSS(`a.decision-link`)))
		checkInert("search")
		e.run("rule", chromedp.Navigate(e.url+"/console/ruleset/versions/2"), chromedp.WaitVisible(chromedp.CSS(`td.message`)))
		if got := e.text("#rule-big_amount td.message"); got != xssImg {
			e.t.Errorf("rule message shown as %q", got)
		}
		checkInert("version")
		e.run("list", chromedp.Navigate(e.url+"/console/lists/blocked_cards"), chromedp.WaitVisible(chromedp.CSS(`#items`)))
		checkInert("list")
	})

	step("sign out", func() {
		e.signOut()
		e.run("after sign-out", chromedp.Navigate(e.url+"/console/decisions"), chromedp.WaitVisible(chromedp.CSS(`#api_key`)))
	})

	step("auditor: read-only, and a change is 403", func() {
		e.signIn(engine.RoleAuditor)
		e.run("rule", chromedp.Navigate(e.url+"/console/rules/card_country_mismatch"), chromedp.WaitVisible(chromedp.CSS(`#f-expression`)))
		controls := `document.querySelectorAll("#save-rule, #delete-rule, #try-it, #new-rule, #add-item, #feedback, #publish, #rollback, #claim, #close-legit").length`
		if n := value(e, "edit controls", chromedp.Evaluate[int](controls)); n != 0 {
			e.t.Errorf("auditor sees %d edit controls on a rule", n)
		}
		if ro := value(e, "disabled", chromedp.Evaluate[bool](`document.querySelector("#rule-form fieldset").disabled`)); !ro {
			e.t.Error("the rule form is editable for an auditor")
		}
		for _, path := range []string{"/console/lists/blocked_cards", "/console/decisions/" + first, "/console/rules", "/console/ruleset/versions/1"} {
			e.run(path, chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS(`main`)))
			if n := value(e, "edit controls", chromedp.Evaluate[int](controls)); n != 0 {
				e.t.Errorf("auditor sees %d edit controls on %s", n, path)
			}
		}
		e.shot("auditor")
		post := `fetch("/console/lists/blocked_cards/items", {method: "POST",
			headers: {"X-CSRF-Token": JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"], "Content-Type": "application/x-www-form-urlencoded"},
			body: "value=fp_auditor"}).then(r => r.status)`
		if code := value(e, "auditor POST", chromedp.Evaluate[int](post, chromedp.EvalAwaitPromise)); code != http.StatusForbidden {
			e.t.Errorf("auditor's change = %d, want 403", code)
		}
		e.signOut()
	})

	if d := e.dialogs.all(); len(d) > 0 {
		t.Errorf("a page opened JavaScript dialogs (a script ran): %q", d)
	}
	t.Logf("console flows took %s", time.Since(start).Round(time.Millisecond))
}
