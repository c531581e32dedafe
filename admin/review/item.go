package review

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
)

// Status is where an item is in the queue.
type Status string

// Item statuses. A claimed item whose claim expired is open again.
const (
	StatusOpen    Status = "open"
	StatusClaimed Status = "claimed"
	StatusClosed  Status = "closed"
)

// Resolutions of a review item or a case.
const (
	ResolutionLegit  = "legit"
	ResolutionFraud  = "fraud"
	ResolutionUnsure = "unsure"
)

// DefaultQueue is the queue of items no policy rule names a queue for.
const DefaultQueue = "default"

// Item is one decision waiting for, or given, a person's judgement.
type Item struct {
	ID            string `json:"id"`
	DecisionID    string `json:"decision_id"`
	TransactionID string `json:"transaction_id"`
	Queue         string `json:"queue"`
	// Why names what opened the item: "rule:<id>" for a review rule,
	// "policy:<name>" for a review policy rule.
	Why      []string       `json:"why"`
	Outcome  engine.Outcome `json:"decision"`
	Amount   int64          `json:"amount"`
	Currency string         `json:"currency"`
	// OpenedAt is the decision's evaluation time.
	OpenedAt time.Time `json:"opened_at"`
	Status   Status    `json:"status"`
	// Assignee holds the claim while ClaimExpiresAt is ahead, and names
	// who closed the item once closed.
	Assignee       string    `json:"assignee,omitempty"`
	ClaimedAt      time.Time `json:"claimed_at,omitzero"`
	ClaimExpiresAt time.Time `json:"claim_expires_at,omitzero"`
	Resolution     string    `json:"resolution,omitempty"`
	Note           string    `json:"note,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	ClosedAt       time.Time `json:"closed_at,omitzero"`
}

// ItemID is the id of the review item of a decision.
func ItemID(decisionID string) string {
	return "rev_" + strings.TrimPrefix(decisionID, "dec_")
}

// effective is the item as of now: a claim past its expiry is open again.
func (it Item) effective(now time.Time) Item {
	if it.Status == StatusClaimed && !now.Before(it.ClaimExpiresAt) {
		it.Status = StatusOpen
		it.Assignee, it.ClaimedAt, it.ClaimExpiresAt = "", time.Time{}, time.Time{}
	}
	return it
}

func encodeValue(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{formatJSON}, b...), nil
}

func decodeValue(b []byte, v any) error {
	if len(b) == 0 || b[0] != formatJSON {
		return fmt.Errorf("unknown stored format")
	}
	return json.Unmarshal(b[1:], v)
}
