// Package keyspace is the one registry of the Badger keys the engine
// writes: every key prefix and every single key, with the package that owns
// it. Packages that store something take their prefixes from here, so two
// of them cannot pick colliding ones; TestNoPrefixOfAnother keeps every
// entry from being a prefix of another, and TestArchitectureDocMatches keeps
// the table in docs/architecture.md equal to All.
//
// A new prefix: add a constant and an Entry in All, then the row the test
// prints to docs/architecture.md. CockroachDB's keys package is the model.
package keyspace

// Decision log (package features).
const (
	Decision  = "d/"  // decision id -> 8-byte seq + record
	Tx        = "t/"  // transaction id -> decision id, when the id is not derived from it (older stores)
	Seq       = "q/"  // seq -> decision id; no longer written, read before the sequence log
	SeqGroup  = "qs/" // first seq of a group commit -> its decision ids
	Table     = "m/table/"
	Account   = "xa/" // search index by account
	Card      = "xc/" // search index by card
	Outcome   = "xo/" // search index by outcome
	Time      = "xt/" // search index by time; no longer written, old keys expire
	Watermark = "m/features_seq"
)

// Feature windows and definitions (package features).
const (
	Window      = "f/" // feature \0 entity values -> window (before entities; migrated at Open)
	Entity      = "e/" // entity spec \0 entity values -> entity
	FeatureName = "m/fname/"
	Epoch       = "m/epoch/"
	Definitions = "m/feature_defs"
	Backfill    = "m/backfill/"
	Hidden      = "m/hidden/"
)

// Lists and limits (package features).
const (
	ListMeta      = "lm/"
	ListItem      = "li/"
	LimitsPolicy  = "lp/policy"
	LimitOverride = "lo/"
	Trust         = "lt/"
	LabelApplied  = "lf/"
)

// Rules, keys and audit (package admin).
const (
	RuleSetVersion = "rv/"
	DraftRule      = "ra/"
	DraftMeta      = "rd/meta"
	APIKey         = "ak/"
	Audit          = "au/"
)

// Review queue and cases (package admin/review).
const (
	ReviewItem   = "rq/i/"
	ReviewActive = "rq/a/"
	ReviewClosed = "rq/c/"
	ReviewCursor = "rq/cursor"
	ReviewPolicy = "rq/policy"
	Case         = "cs/"
)

// Webhooks, their outbox and alerts (package admin/notify), and the running
// canary publish (package admin).
const (
	WebhookHook        = "wh/h/"
	WebhookEvent       = "wh/e/"
	WebhookDue         = "wh/q/"
	WebhookLog         = "wh/l/"
	WebhookCursor      = "wh/cursor"
	WebhookAuditCursor = "wh/audit"
	AlertRule          = "al/r/"
	Alert              = "al/a/"
	AlertSeeded        = "al/seeded"
	Canary             = "cn/state"
)

// Backtest statuses, shared by every node (package admin/backtest), and
// console sessions (package server/console, stored through main).
const (
	Backtest       = "bt/"
	ConsoleSession = "se/"
)

// Imports into a cluster (package main, `risk cluster import`).
const (
	ImportSources = "im/sources"
)

// Entry is one registered prefix or key.
type Entry struct {
	// Key is the prefix (ending in "/") or the whole key.
	Key string
	// Owner is the package that reads and writes it.
	Owner string
	// What says what is stored under it, for the architecture doc.
	What string
}

// All returns every registered prefix and key, a new slice on each call.
func All() []Entry {
	return []Entry{
		{Decision, "features", "decision record"},
		{Tx, "features", "decision id of a transaction whose decision id is not derived from it (older stores)"},
		{Seq, "features", "one decision id per seq (older stores; read before the sequence log)"},
		{SeqGroup, "features", "the sequence log"},
		{Table, "features", "record tables"},
		{Account, "features", "search index by account"},
		{Card, "features", "search index by card"},
		{Outcome, "features", "search index by outcome"},
		{Time, "features", "search index by time (older stores; expires)"},
		{Watermark, "features", "the sequence number the stored windows hold"},
		{Window, "features", "one window per feature (before entities)"},
		{Entity, "features", "an entity's windows"},
		{FeatureName, "features", "feature numbers"},
		{Epoch, "features", "feature state epochs"},
		{Definitions, "features", "feature definitions"},
		{Backfill, "features", "backfill markers"},
		{Hidden, "features", "hidden features (daily spend)"},
		{ListMeta, "features", "lists"},
		{ListItem, "features", "list items"},
		{LimitsPolicy, "features", "limits policy"},
		{LimitOverride, "features", "limit overrides"},
		{Trust, "features", "trust per entity"},
		{LabelApplied, "features", "applied-label markers"},
		{RuleSetVersion, "admin", "published rule set versions"},
		{DraftRule, "admin", "draft rules"},
		{DraftMeta, "admin", "draft thresholds and bookkeeping"},
		{APIKey, "admin", "API keys (hashed)"},
		{Audit, "admin", "audit trail"},
		{ReviewItem, "admin/review", "review items"},
		{ReviewActive, "admin/review", "open and claimed review items"},
		{ReviewClosed, "admin/review", "closed review items"},
		{ReviewCursor, "admin/review", "review queue cursor"},
		{ReviewPolicy, "admin/review", "review policy"},
		{Case, "admin/review", "cases"},
		{WebhookHook, "admin/notify", "webhooks with their signing secrets"},
		{WebhookEvent, "admin/notify", "event bodies as delivered"},
		{WebhookDue, "admin/notify", "the outbox, one queue per webhook"},
		{WebhookLog, "admin/notify", "deliveries log"},
		{WebhookCursor, "admin/notify", "next decision-log sequence number the webhook reader reads"},
		{WebhookAuditCursor, "admin/notify", "last audit entry the webhook reader read"},
		{AlertRule, "admin/notify", "alert rules"},
		{Alert, "admin/notify", "alerts"},
		{AlertSeeded, "admin/notify", "default alert rules stored once"},
		{Canary, "admin", "the running canary publish"},
		{Backtest, "admin/backtest", "backtest statuses and results, shared by every node"},
		{ConsoleSession, "server/console", "console sessions, the API key sealed with the session id"},
		{ImportSources, "main", "single-node stores imported into the cluster"},
	}
}
