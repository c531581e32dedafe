package review

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// CaseQuery selects cases, newest first. Zero fields do not filter.
type CaseQuery struct {
	// Status is open or closed (the library).
	Status string
	Tag    string
	// Rule is the id of an active rule that matched one of its decisions.
	Rule string
	// Entity matches an entity's value, or "type:value".
	Entity  string
	Outcome engine.Outcome
	// From and To bound the creation time: From <= created < To.
	From, To time.Time
	// Text matches, case-insensitively, a substring of the title, a note,
	// a tag, an entity value, a rule or the resolution.
	Text string
	// Limit is 1 to MaxPage; zero means DefaultPage. Each ignores it.
	Limit  int
	Cursor string
}

// maxCaseScan bounds the cases one page or one export examines; a page
// that reaches it ends early with a cursor. Cases are kept for the
// retention period, so this is a bound per request, not on the library.
const maxCaseScan = 100_000

func (f *CaseQuery) matches(c *Case) bool {
	if (f.Status != "" && c.Status != f.Status) || (f.Tag != "" && !slices.Contains(c.Tags, f.Tag)) ||
		(f.Rule != "" && !slices.Contains(c.Rules, f.Rule)) || (f.Outcome != "" && !slices.Contains(c.Outcomes, f.Outcome)) ||
		(!f.From.IsZero() && c.CreatedAt.Before(f.From)) || (!f.To.IsZero() && !c.CreatedAt.Before(f.To)) {
		return false
	}
	if f.Entity != "" && !slices.ContainsFunc(c.Entities, func(e Entity) bool { return e.Value == f.Entity || e.Type+":"+e.Value == f.Entity }) {
		return false
	}
	return f.Text == "" || c.hasText(strings.ToLower(f.Text))
}

func (c *Case) hasText(t string) bool {
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), t) }
	if has(c.Title) || has(c.Resolution) || slices.ContainsFunc(c.Tags, has) || slices.ContainsFunc(c.Rules, has) {
		return true
	}
	for _, e := range c.Entities {
		if has(e.Value) {
			return true
		}
	}
	for _, n := range c.Notes {
		if has(n.Text) {
			return true
		}
	}
	return false
}

// Search returns one page of cases matching f, newest first, and the
// cursor of the next page ("" at the end).
func (cs *Cases) Search(ctx context.Context, f CaseQuery) ([]Case, string, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultPage
	}
	f.Limit = min(f.Limit, MaxPage)
	var out []Case
	next, err := cs.walk(ctx, f, func(c Case) bool {
		if len(out) == f.Limit {
			return false
		}
		out = append(out, c)
		return true
	})
	return out, next, err
}

// Each calls fn for every case matching f, newest first, until fn returns
// an error; it examines at most maxCaseScan cases and returns the cursor to
// continue from when it stopped there.
func (cs *Cases) Each(ctx context.Context, f CaseQuery, fn func(c Case) error) (string, error) {
	var ferr error
	next, err := cs.walk(ctx, f, func(c Case) bool {
		ferr = fn(c)
		return ferr == nil
	})
	if ferr != nil {
		return "", ferr
	}
	return next, err
}

// walk calls take for each matching case from f.Cursor on, newest first,
// until take returns false (the case is then not taken: the cursor is the
// case before it) or maxCaseScan cases were examined.
func (cs *Cases) walk(ctx context.Context, f CaseQuery, take func(c Case) bool) (string, error) {
	if f.Cursor != "" && !strings.HasPrefix(f.Cursor, "case_") {
		return "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this server issued")
	}
	var next string
	err := cs.cfg.DB.View(ctx, func(tx kv.Tx) error {
		var from []byte // nil: the newest case
		if f.Cursor != "" {
			from = []byte(prefixCase + f.Cursor)
		}
		last, examined := "", 0
		return tx.Scan([]byte(prefixCase), kv.ScanOptions{Reverse: true, From: from}, func(key, value []byte) error {
			id := string(key[len(prefixCase):])
			if id == f.Cursor {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if examined == maxCaseScan {
				next = last
				return kv.Stop
			}
			var c Case
			if err := decodeValue(value, &c); err != nil {
				return fmt.Errorf("decode case %s: %w", id, err)
			}
			if f.matches(&c) && !take(c) {
				next = last
				return kv.Stop
			}
			examined++
			last = id
			return nil
		})
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return "", fmt.Errorf("search cases: %w", err)
	}
	return next, err
}
