package engine

import "time"

// Query selects decision records, newest first. Empty fields do not filter.
type Query struct {
	TransactionID   string
	AccountID       string
	CardFingerprint string
	Outcome         Outcome
	// From is inclusive and To exclusive, on the evaluation time.
	From, To time.Time
	// Limit is the page size (default 50, at most 500).
	Limit int
	// Cursor continues a previous page; it is opaque.
	Cursor string
}

// Matches reports whether rec satisfies every filter of q.
func (q *Query) Matches(rec *Record) bool {
	p := &rec.Payment
	return (q.TransactionID == "" || rec.TransactionID == q.TransactionID) &&
		(q.AccountID == "" || p.Account.ID == q.AccountID) &&
		(q.CardFingerprint == "" || p.Card.Fingerprint == q.CardFingerprint) &&
		(q.Outcome == "" || rec.Outcome == q.Outcome) &&
		(q.From.IsZero() || !rec.EvaluatedAt.Before(q.From)) &&
		(q.To.IsZero() || rec.EvaluatedAt.Before(q.To))
}
