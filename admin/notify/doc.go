// Package notify tells the people who must act: signed webhooks delivered
// at least once from a durable outbox, and alert rules over live rates
// that fire and resolve as webhook events.
//
// Decision events are derived by following the durable decision log from a
// cursor kept in the store, as the review queue does, so nothing is added to
// the decision path: an acknowledged decision is in the log, and its
// events are put in the outbox, with the cursor past it, in one
// transaction on the next pass, even when the process died right after
// answering. Rule set and list events are derived the same way from the
// audit trail. Delivery reads due entries of the outbox in small batches,
// signs each attempt (Risk-Signature, as Stripe does) and retries with
// exponential backoff and jitter for MaxRetryAge; a dead receiver costs
// disk, never memory.
//
// docs/webhooks.md describes the API and how to verify a signature.
package notify

// Event types a webhook may subscribe to.
const (
	EventDenied         = "decision.denied"
	EventChallenged     = "decision.challenged"
	EventDegraded       = "decision.degraded"
	EventReview         = "decision.review"
	EventPublished      = "ruleset.published"
	EventRolledBack     = "ruleset.rolled_back"
	EventListChanged    = "list.changed"
	EventAlertFired     = "alert.fired"
	EventAlertResolved  = "alert.resolved"
	EventTest           = "webhook.test"
	signatureHeader     = "Risk-Signature"
	eventIDHeader       = "Risk-Event-Id"
	eventTypeHeader     = "Risk-Event-Type"
	userAgent           = "risk-webhooks/1"
	consoleDecisionPath = "/console/decisions/"
)

// EventTypes are the event types a webhook may subscribe to, in the order
// the API lists them.
var EventTypes = []string{
	EventDenied, EventChallenged, EventDegraded, EventReview,
	EventPublished, EventRolledBack, EventListChanged, EventAlertFired, EventAlertResolved,
}

func knownEvent(t string) bool {
	for _, e := range EventTypes {
		if e == t {
			return true
		}
	}
	return false
}
