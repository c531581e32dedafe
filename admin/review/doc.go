// Package review is the review queue and the case library: people decide
// what rules cannot, and the team keeps what it learnt.
//
// A decision asks for review when an active review rule matched
// (engine.Record.ReviewRequested) or when the review policy selects it (an
// outcome, a merchant, an amount). The queue opens one item per such
// decision by tailing the decision log from a cursor kept in the store, so an
// acknowledged decision gets its item even when the process dies right
// after answering: the log is durable, the item is opened on the next pass.
// Items are opened idempotently (the item id is derived from the decision
// id) and in the same transaction that moves the cursor.
//
// Reviewers claim an item (one at a time; a claim expires), then close it
// as legit, fraud or unsure. Closing applies the matching feedback label
// through the engine's feedback path (limits, trust, block lists, rule
// statistics, label-filtered features) and is audited.
//
// Cases group decisions and entities with notes, tags and links; closed
// cases form the library, searchable and exportable as JSONL. Closing a
// case as fraud may add its entities to block lists and label its
// decisions fraud, audited as one action.
//
// HTTP routes are in Register; docs/reviews.md describes the API.
package review

// EventReview is the webhook event type of an opened review item. The queue
// calls Config.OnOpen once per item it opens; the webhooks wiring turns that
// into this event.
const EventReview = "decision.review"
