package review

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// Patch changes a case; nil fields are left as they are.
type Patch struct {
	Title    *string
	Status   *string
	Assignee *string
	Tags     *[]string
	Links    *[]string
	// Resolution is required when Status closes the case.
	Resolution *string
	// Block, only when closing as fraud, adds every entity of the case to
	// each of Lists, expiring at ExpiresAt (zero never).
	Block *Block
}

// Block is the block-list part of closing a case as fraud.
type Block struct {
	Lists     []string
	ExpiresAt time.Time
}

// PatchResult is what a patch did beyond the case itself.
type PatchResult struct {
	Case Case
	// Labelled are the decisions labelled fraud by closing the case.
	Labelled []string
	Blocked  []BlockedEntry
}

// Patch changes a case. Closing it as fraud labels every decision of the
// case fraud (engine feedback: limits, trust, block lists, statistics) and,
// with Block, adds every entity to the named lists, before the case is
// stored closed: a failure leaves the case open, and repeating the patch
// completes it (labels and list entries are idempotent). The whole patch
// is audited as one entry: "case.close" when it closes the case, else
// "case.update".
func (cs *Cases) Patch(ctx context.Context, id string, p Patch) (PatchResult, error) {
	if err := p.check(cs.cfg.Now()); err != nil {
		return PatchResult{}, err
	}
	if p.Block != nil {
		if cs.cfg.Lists == nil {
			return PatchResult{}, fmt.Errorf("block lists are not configured: %w", engine.ErrUnavailable)
		}
		for i, name := range p.Block.Lists {
			if _, err := cs.cfg.Lists.Get(name); errors.Is(err, engine.ErrNotFound) {
				return PatchResult{}, engine.Invalid(fmt.Sprintf("block.lists[%d]", i), "unknown_list", fmt.Sprintf("list %q does not exist", name))
			} else if err != nil {
				return PatchResult{}, err
			}
		}
	}
	var res PatchResult
	closing := false
	before, after, err := cs.update(ctx, id, func(c *Case) error {
		closing = p.Status != nil && *p.Status == CaseClosed && c.Status != CaseClosed
		if p.Status != nil && *p.Status == CaseClosed && c.Status == CaseClosed && (p.Resolution != nil || p.Block != nil) {
			return fmt.Errorf("case %s is closed; reopen it first: %w", id, engine.ErrConflict)
		}
		if p.Block != nil && !closing {
			return engine.Invalid("block", "not_closing", "block applies only when the patch closes the case")
		}
		if p.Title != nil {
			c.Title = *p.Title
		}
		if p.Assignee != nil {
			c.Assignee = *p.Assignee
		}
		if p.Tags != nil {
			c.Tags = orEmpty(*p.Tags)
		}
		if p.Links != nil {
			c.Links = orEmpty(*p.Links)
		}
		if p.Status != nil && *p.Status == CaseOpen && c.Status == CaseClosed {
			c.Status, c.Resolution, c.ClosedBy, c.ClosedAt = CaseOpen, "", "", time.Time{}
		}
		if !closing {
			return nil
		}
		if *p.Resolution == ResolutionFraud {
			for _, d := range c.Decisions {
				if _, err := cs.cfg.Feedback.Feedback(ctx, d, engine.Label{Label: engine.LabelFraud, Note: caseNote(c.ID)}); err != nil {
					return fmt.Errorf("label decision %s fraud: %w", d, err)
				}
				res.Labelled = append(res.Labelled, d)
			}
			if p.Block != nil {
				blocked, err := cs.block(ctx, c, *p.Block)
				if err != nil {
					return err
				}
				res.Blocked = blocked
				c.Blocked = append(slices.Clone(c.Blocked), blocked...)
			}
		}
		c.Status, c.Resolution, c.ClosedBy, c.ClosedAt = CaseClosed, *p.Resolution, engine.Actor(ctx), cs.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		return PatchResult{}, err
	}
	res.Case = after
	action := "case.update"
	var auditAfter any = after
	if closing {
		action = "case.close"
		auditAfter = map[string]any{"case": after, "labelled_fraud": res.Labelled, "blocked": res.Blocked}
	}
	if err := record(ctx, cs.cfg.Audit, action, "case:"+id, before, auditAfter); err != nil {
		return res, err
	}
	return res, nil
}

func (cs *Cases) block(ctx context.Context, c *Case, b Block) ([]BlockedEntry, error) {
	var out []BlockedEntry
	actor := engine.Actor(ctx)
	for _, name := range b.Lists {
		items := make([]features.Item, len(c.Entities))
		for i, e := range c.Entities {
			items[i] = features.Item{Value: e.Value, Reason: "fraud: case " + c.ID, Author: actor, ExpiresAt: b.ExpiresAt}
		}
		if len(items) == 0 {
			continue
		}
		if _, err := cs.cfg.Lists.AddItems(name, items); err != nil {
			return nil, fmt.Errorf("add case entities to list %s: %w", name, err)
		}
		for _, it := range items {
			out = append(out, BlockedEntry{List: name, Value: it.Value, ExpiresAt: it.ExpiresAt})
		}
	}
	return out, nil
}

// check validates the fields a patch sets.
func (p *Patch) check(now time.Time) error {
	if p.Title != nil {
		if err := checkTitle(*p.Title); err != nil {
			return err
		}
	}
	if p.Assignee != nil && len(*p.Assignee) > maxNameLen {
		return engine.Invalid("assignee", "too_long", fmt.Sprintf("assignee is longer than %d bytes", maxNameLen))
	}
	if p.Tags != nil {
		if err := checkTags("tags", *p.Tags); err != nil {
			return err
		}
	}
	if p.Links != nil {
		if err := checkLinks(*p.Links); err != nil {
			return err
		}
	}
	if p.Status != nil && *p.Status != CaseOpen && *p.Status != CaseClosed {
		return engine.Invalid("status", "invalid_status", "status must be open or closed")
	}
	closing := p.Status != nil && *p.Status == CaseClosed
	if p.Resolution != nil && !closing {
		return engine.Invalid("resolution", "not_closing", `resolution is set with "status": "closed"`)
	}
	if closing {
		if p.Resolution == nil {
			return engine.Invalid("resolution", "required", "closing a case needs a resolution: legit, fraud or unsure")
		}
		if _, err := labelOf(*p.Resolution); err != nil {
			return err
		}
	}
	if p.Block != nil {
		switch {
		case !closing || *p.Resolution != ResolutionFraud:
			return engine.Invalid("block", "not_fraud", "block applies only when closing a case as fraud")
		case len(p.Block.Lists) == 0 || len(p.Block.Lists) > maxBlockLists:
			return engine.Invalid("block.lists", "invalid_lists", fmt.Sprintf("block.lists names 1 to %d lists", maxBlockLists))
		case !p.Block.ExpiresAt.IsZero() && !p.Block.ExpiresAt.After(now):
			return engine.Invalid("block.expires_at", "in_the_past", "block.expires_at must be in the future")
		}
	}
	return nil
}

// caseNote is the note of a label a case applies: the case's id, unless the
// id's time part alone reads as a card number (then the note could not be
// stored; the audit entry of the close still names the case).
func caseNote(id string) string {
	if engine.LooksLikePAN(id) {
		return "case"
	}
	return "case " + id
}
