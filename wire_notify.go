package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/notify"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/server"
)

// notifyConfig is the serve configuration of webhooks and alerts
// (docs/webhooks.md).
type notifyConfig struct {
	// PublicURL is the console's public address, for the console_url of
	// decision events.
	PublicURL string
	// AllowPrivate lets webhooks reach loopback, private and link-local
	// addresses.
	AllowPrivate bool
}

// notifyFlags declares the webhook flags on fs.
func notifyFlags(fs *flag.FlagSet, c *notifyConfig, ev *envVars) {
	fs.StringVar(&c.PublicURL, "public-url", env("RISK_PUBLIC_URL", ""), "public base URL of the engine's console, e.g. https://risk.example.com; decision webhook events link to <public-url>/console/decisions/<id> [RISK_PUBLIC_URL]")
	fs.BoolVar(&c.AllowPrivate, "webhook-allow-private", ev.Bool("RISK_WEBHOOK_ALLOW_PRIVATE", false), "let webhooks reach loopback, private and link-local addresses (refused by default against SSRF) [RISK_WEBHOOK_ALLOW_PRIVATE]")
}

func (c notifyConfig) validate() error {
	if c.PublicURL == "" {
		return nil
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want an absolute http or https URL such as https://risk.example.com", c.PublicURL)
	}
	return nil
}

// notifier is the wired webhooks and alerts.
type notifier struct {
	hooks  *notify.Notifier
	alerts *notify.Alerts
}

// Close stops the alert evaluation, then the webhook reader and delivery.
func (n *notifier) Close(ctx context.Context) error {
	return errors.Join(n.alerts.Close(ctx), n.hooks.Close(ctx))
}

// wireNotify registers the webhooks and the alerts on the admin API, and
// starts reading the decision log and the audit trail into the outbox,
// delivering it, and evaluating the alert rules; the caller closes it
// before the store. Every decision read from the log feeds the live rates
// of the alerts and the guardrails of api (canary guard, rule guard),
// whose breaches fire alerts.
func wireNotify(ctx context.Context, c config, st *storage, audit *admin.Audit, api *admin.API, srv *server.Server, reg prometheus.Registerer, log *slog.Logger) (*notifier, error) {
	var alerts *notify.Alerts
	hooks := notify.New(notify.Config{
		DB: st.kv, Decisions: st.decisions, Audit: audit,
		PublicURL: strings.TrimRight(c.Notify.PublicURL, "/"), AllowPrivate: c.Notify.AllowPrivate,
		FirstSeq: func() uint64 { return st.lastSeq() + 1 },
		Active:   st.leader,
		OnRecord: func(rec *engine.Record) {
			alerts.Observe(rec)
			api.Observe(context.Background(), rec)
		},
		Log: log,
	})
	alerts = notify.NewAlerts(notify.AlertsConfig{DB: st.kv, Notifier: hooks, Log: log})
	api.OnGuard(func(ctx context.Context, ev admin.GuardEvent) {
		var err error
		if ev.Resolved {
			err = alerts.Resolve(ctx, ev.Key, ev.Summary, nil)
		} else {
			err = alerts.Fire(ctx, ev.Key, ev.Summary, ev.Details)
		}
		if err != nil {
			log.Error("alerts: guardrail", "key", ev.Key, "err", err)
		}
	})
	if err := alerts.Open(ctx); err != nil {
		return nil, err
	}
	if err := hooks.Open(ctx); err != nil {
		_ = alerts.Close(ctx)
		return nil, err
	}
	notifyMetrics(reg, hooks, alerts)
	notify.Register(srv.Group("/admin"), srv.Require, hooks, audit)
	notify.RegisterAlerts(srv.Group("/admin"), srv.Require, alerts, audit)
	return &notifier{hooks: hooks, alerts: alerts}, nil
}

// notifyMetrics registers the webhook and alert metrics on reg.
func notifyMetrics(reg prometheus.Registerer, hooks *notify.Notifier, alerts *notify.Alerts) {
	deliveries := func(result string, v func(notify.DeliveryStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "risk_webhook_deliveries_total", Help: "Webhook delivery attempts, by result: ok (2xx) or failed (retried, or given up).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(v(hooks.Stats())) })
	}
	reg.MustRegister(
		deliveries("ok", func(s notify.DeliveryStats) uint64 { return s.Delivered }),
		deliveries("failed", func(s notify.DeliveryStats) uint64 { return s.Failed }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "risk_webhook_gave_up_total", Help: "Webhook events given up after 24 hours of retries (they can be resent by hand).",
		}, func() float64 { return float64(hooks.Stats().GaveUp) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "risk_alerts_firing", Help: "Alerts firing now (alert rules and guardrails).",
		}, func() float64 { return float64(alerts.Firing()) }),
	)
}

// reviewEvents returns the review queue's OpenTxn: a decision.review
// event put in the outbox in the transaction that opens each item, with an
// id derived from the item, so it is stored exactly when the item is.
func reviewEvents(w *notifier) func(kv.Tx, review.Item) error {
	n := w.hooks
	return func(tx kv.Tx, it review.Item) error {
		data := struct {
			ReviewID      string    `json:"review_id"`
			DecisionID    string    `json:"decision_id"`
			TransactionID string    `json:"transaction_id"`
			Decision      string    `json:"decision"`
			Queue         string    `json:"queue"`
			Why           []string  `json:"why"`
			Amount        int64     `json:"amount"`
			Currency      string    `json:"currency"`
			OpenedAt      time.Time `json:"opened_at"`
			ConsoleURL    string    `json:"console_url,omitempty"`
		}{it.ID, it.DecisionID, it.TransactionID, string(it.Outcome), it.Queue, it.Why, it.Amount, it.Currency, it.OpenedAt, n.ConsoleURL(it.DecisionID)}
		return n.PublishTxn(tx, review.EventReview, "evt_"+it.ID, data)
	}
}
