package review

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// ItemQuery selects items. Zero fields do not filter, except Status.
type ItemQuery struct {
	// Status is open (the default), claimed or closed, as of now: an item
	// whose claim expired is open.
	Status   Status
	Queue    string
	Assignee string
	// Newest lists newest first; the default is oldest first (opened time
	// for open and claimed items, closed time for closed ones).
	Newest bool
	// Limit is 1 to MaxPage; zero means DefaultPage.
	Limit  int
	Cursor string
}

// Page sizes, and the most index entries one page examines: a page that
// reaches it ends early with a cursor, so a filter matching few items costs
// bounded work per request.
const (
	DefaultPage = 50
	MaxPage     = 500
	maxExamined = 10_000
)

// List returns one page of items and the cursor of the next ("" at the
// end).
func (q *Queue) List(ctx context.Context, f ItemQuery) ([]Item, string, error) {
	if f.Status == "" {
		f.Status = StatusOpen
	}
	if f.Limit <= 0 {
		f.Limit = DefaultPage
	}
	f.Limit = min(f.Limit, MaxPage)
	prefix := []byte(prefixActive)
	if f.Status == StatusClosed {
		prefix = []byte(prefixClosed)
	}
	var after []byte
	if f.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || len(c) <= 8 || !bytes.HasPrefix(c[8:], []byte("rev_")) {
			return nil, "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this server issued")
		}
		after = c
	}
	now := q.now()
	var (
		out  []Item
		next string
	)
	err := q.cfg.DB.View(ctx, func(tx kv.Tx) error {
		from := append(bytes.Clone(prefix), after...)
		if f.Newest && after == nil {
			from = nil // the newest entry
		}
		examined := 0
		var last []byte // the suffix of the last index entry examined
		return tx.Scan(prefix, kv.ScanOptions{Reverse: f.Newest, From: from, KeysOnly: true}, func(key, _ []byte) error {
			suffix := key[len(prefix):]
			if after != nil && bytes.Equal(suffix, after) {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(out) == f.Limit || examined == maxExamined {
				next = base64.RawURLEncoding.EncodeToString(last)
				return kv.Stop
			}
			examined++
			last = bytes.Clone(suffix)
			if len(suffix) <= 8 {
				return nil
			}
			item, err := getItem(tx, string(suffix[8:]))
			if errors.Is(err, engine.ErrNotFound) {
				return nil // expired
			}
			if err != nil {
				return err
			}
			item = item.effective(now)
			if item.Status == f.Status && (f.Queue == "" || item.Queue == f.Queue) && (f.Assignee == "" || item.Assignee == f.Assignee) {
				out = append(out, item)
			}
			return nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("list review items: %w", err)
	}
	return out, next, nil
}

// Get returns an item as of now, or an error wrapping engine.ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (Item, error) {
	var it Item
	err := q.cfg.DB.View(ctx, func(tx kv.Tx) error {
		var err error
		it, err = getItem(tx, id)
		return err
	})
	if err != nil {
		return Item{}, err
	}
	return it.effective(q.now()), nil
}

func getItem(tx kv.Tx, id string) (Item, error) {
	v, err := tx.Get([]byte(prefixItem + id))
	if errors.Is(err, kv.ErrNotFound) {
		return Item{}, fmt.Errorf("review item %q: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return Item{}, err
	}
	var it Item
	if err := decodeValue(v, &it); err != nil {
		return Item{}, fmt.Errorf("decode review item %q: %w", id, err)
	}
	return it, nil
}

// Claim gives the item to the caller (engine.Actor of ctx) until ClaimTTL
// from now. Claiming an item the caller holds renews the claim. An item
// held by someone else, or closed, is an error wrapping engine.ErrConflict.
func (q *Queue) Claim(ctx context.Context, id string) (Item, error) {
	who := engine.Actor(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	var it Item
	err := q.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		var err error
		if it, err = getItem(tx, id); err != nil {
			return err
		}
		now := q.now()
		it = it.effective(now)
		switch {
		case it.Status == StatusClosed:
			return fmt.Errorf("review item %s is closed: %w", id, engine.ErrConflict)
		case it.Status == StatusClaimed && it.Assignee != who:
			return fmt.Errorf("review item %s is claimed by %s until %s: %w", id, it.Assignee, it.ClaimExpiresAt.Format("15:04:05Z07:00"), engine.ErrConflict)
		}
		it.Status, it.Assignee, it.ClaimedAt, it.ClaimExpiresAt = StatusClaimed, who, now, now.Add(q.cfg.ClaimTTL)
		return q.putItem(tx, it)
	})
	if err != nil {
		return Item{}, err
	}
	return it, nil
}

// Closing is how a reviewer closes an item.
type Closing struct {
	Resolution string
	Note       string
	Tags       []string
}

// Bounds on what reviewers write.
const (
	MaxTags   = 20
	maxTagLen = 64
)

func checkTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return engine.Invalid(field, "too_many", fmt.Sprintf("at most %d tags", MaxTags))
	}
	for _, t := range tags {
		if len(t) > maxTagLen || !namePattern.MatchString(t) {
			return engine.Invalid(field, "invalid_tag", fmt.Sprintf("a tag is 1 to %d letters, digits, '_', '.', ':' or '-'", maxTagLen))
		}
	}
	return nil
}

func checkNote(field, note string, max int) error {
	switch {
	case len(note) > max:
		return engine.Invalid(field, "too_long", fmt.Sprintf("%s is longer than %d bytes", field, max))
	case engine.LooksLikePAN(note):
		return engine.Invalid(field, "card_number_refused", "the text looks like it holds a card number; never send one")
	}
	return nil
}

// labelOf is the feedback label of a resolution; "" for unsure.
func labelOf(resolution string) (string, error) {
	switch resolution {
	case ResolutionLegit:
		return engine.LabelLegit, nil
	case ResolutionFraud:
		return engine.LabelFraud, nil
	case ResolutionUnsure:
		return "", nil
	case "":
		return "", engine.Invalid("resolution", "required", "resolution is required: legit, fraud or unsure")
	}
	return "", engine.Invalid("resolution", "invalid_resolution", "resolution must be legit, fraud or unsure")
}

// CloseItem closes the item with the reviewer's resolution. A legit or
// fraud resolution is applied as that feedback label on the decision
// first (engine feedback: limits, trust, block lists, statistics); when
// that fails, the item stays as it was and a retry applies it. An item
// held by someone else, or already closed, is an error wrapping
// engine.ErrConflict. The caller audits.
func (q *Queue) CloseItem(ctx context.Context, id string, c Closing) (Item, *engine.FeedbackResult, error) {
	label, err := labelOf(c.Resolution)
	if err != nil {
		return Item{}, nil, err
	}
	if err := checkNote("note", c.Note, engine.MaxNoteLen); err != nil {
		return Item{}, nil, err
	}
	if err := checkTags("tags", c.Tags); err != nil {
		return Item{}, nil, err
	}
	who := engine.Actor(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	it, err := q.Get(ctx, id)
	if err != nil {
		return Item{}, nil, err
	}
	switch {
	case it.Status == StatusClosed:
		return Item{}, nil, fmt.Errorf("review item %s is closed: %w", id, engine.ErrConflict)
	case it.Status == StatusClaimed && it.Assignee != who:
		return Item{}, nil, fmt.Errorf("review item %s is claimed by %s: %w", id, it.Assignee, engine.ErrConflict)
	}
	var fb *engine.FeedbackResult
	if label != "" {
		res, err := q.cfg.Feedback.Feedback(ctx, it.DecisionID, engine.Label{Label: label, Note: c.Note})
		if err != nil {
			return Item{}, nil, fmt.Errorf("label decision %s %s: %w", it.DecisionID, label, err)
		}
		fb = &res
	}
	now := q.now()
	it.Status, it.Assignee, it.Resolution, it.Note, it.Tags, it.ClosedAt = StatusClosed, who, c.Resolution, c.Note, c.Tags, now
	it.ClaimExpiresAt = time.Time{}
	// The label is applied already, so the item is closed even when the
	// caller has gone meanwhile; a retry would label the decision again.
	err = q.cfg.DB.Update(context.WithoutCancel(ctx), func(tx kv.Tx) error {
		if err := tx.Delete(timeKey(prefixActive, it.OpenedAt.UnixNano(), it.ID)); err != nil {
			return err
		}
		if err := q.cfg.set(tx, timeKey(prefixClosed, now.UnixNano(), it.ID), nil, it.OpenedAt); err != nil {
			return err
		}
		return q.putItem(tx, it)
	})
	if err != nil {
		return Item{}, nil, fmt.Errorf("close review item: %w", err)
	}
	return it, fb, nil
}
