package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/server"
)

// reviewConfig is the serve configuration of the review queue
// (docs/reviews.md).
type reviewConfig struct {
	// ClaimTTL is how long a reviewer's claim on an item holds.
	ClaimTTL time.Duration
}

// reviewFlags declares the review queue's flags on fs.
func reviewFlags(fs *flag.FlagSet, c *reviewConfig, ev *envVars) {
	fs.DurationVar(&c.ClaimTTL, "review-claim-ttl", ev.Duration("RISK_REVIEW_CLAIM_TTL", review.DefaultClaimTTL), "how long a reviewer's claim on a review item holds [RISK_REVIEW_CLAIM_TTL]")
}

func (c reviewConfig) validate() error {
	if c.ClaimTTL <= 0 {
		return fmt.Errorf("--review-claim-ttl must be positive")
	}
	return nil
}

// wireReview registers the review queue and the cases on the admin API and
// starts the queue's reader of the decision log; the caller closes the
// queue before the store. Items and cases are kept as long as decisions
// (--retention). openTxn (reviewEvents) puts review.EventReview
// ("decision.review") in the webhook outbox in the transaction that opens
// each item.
func wireReview(ctx context.Context, c config, st *storage, eng *engine.Engine, lists *features.Lists, audit *admin.Audit, srv *server.Server, log *slog.Logger, openTxn func(kv.Tx, review.Item) error) (*review.Queue, error) {
	cfg := review.Config{
		DB: st.kv, Decisions: st.decisions, Feedback: eng, Lists: lists, Audit: audit,
		ClaimTTL: c.Review.ClaimTTL, Retention: c.Retention, Log: log,
		FirstSeq: func() uint64 { return st.lastSeq() + 1 },
		OpenTxn:  openTxn,
		Active:   st.leader,
	}
	q := review.NewQueue(cfg)
	if err := q.Open(ctx); err != nil {
		return nil, err
	}
	review.Register(srv.Group("/admin"), srv.Require, q, review.NewCases(cfg))
	return q, nil
}
