package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Rule is a draft rule.
type Rule struct {
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Expression  string    `json:"expression"`
	Action      string    `json:"action"`
	Score       int       `json:"score,omitempty"`
	Mode        string    `json:"mode,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Message     string    `json:"message,omitempty"`
	Version     int       `json:"version,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

// Rules returns the draft's rules.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var out struct {
		Rules []Rule `json:"rules"`
	}
	err := c.do(ctx, c.get("/admin/rules", nil), &out)
	return out.Rules, err
}

// CreateRule adds r to the draft; a rule that does not compile is a 422
// *Error whose Errors hold every position.
func (c *Client) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	var out Rule
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/rules", body: r, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// PutRule replaces the draft rule r.ID.
func (c *Client) PutRule(ctx context.Context, r Rule) (Rule, error) {
	var out Rule
	err := c.do(ctx, request{method: http.MethodPut, path: "/admin/rules/" + pathEscape(r.ID), body: r, retry: true, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// DeleteRule removes a rule from the draft.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/admin/rules/" + pathEscape(id), retry: true, timeout: c.cfg.Timeout}, nil)
}

// Version is a published rule set version.
type Version struct {
	Version            int64     `json:"version"`
	Author             string    `json:"author"`
	CreatedAt          time.Time `json:"created_at"`
	Comment            string    `json:"comment,omitempty"`
	Hash               string    `json:"hash"`
	ChallengeThreshold int       `json:"challenge_threshold"`
	DenyThreshold      int       `json:"deny_threshold"`
	Rules              int       `json:"rules"`
	Live               bool      `json:"live"`
}

// Publish makes the draft the next live version. It is not retried: a
// repeat would publish twice.
func (c *Client) Publish(ctx context.Context, comment string) (Version, error) {
	var out Version
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/ruleset/publish", body: map[string]string{"comment": comment}, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// Rollback publishes the rules of version again as the next version.
func (c *Client) Rollback(ctx context.Context, version int64, comment string) (Version, error) {
	var out Version
	body := map[string]any{"version": version, "comment": comment}
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/ruleset/rollback", body: body, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// List is a named list rules read with in_list.
type List struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Description string    `json:"description,omitempty"`
	Author      string    `json:"author,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Items       int       `json:"items"`
	UsedBy      []string  `json:"used_by,omitempty"`
}

// Lists returns every list.
func (c *Client) Lists(ctx context.Context) ([]List, error) {
	var out struct {
		Lists []List `json:"lists"`
	}
	err := c.do(ctx, c.get("/admin/lists", nil), &out)
	return out.Lists, err
}

// PutList creates the list name of kind (string, ip or cidr), or
// describes it again.
func (c *Client) PutList(ctx context.Context, name, kind, description string) (List, error) {
	var out List
	body := map[string]string{"kind": kind, "description": description}
	err := c.do(ctx, request{method: http.MethodPut, path: "/admin/lists/" + pathEscape(name), body: body, retry: true, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// Item is a list item. ExpiresAt zero never expires.
type Item struct {
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ItemsPage is a page of list items in value order.
type ItemsPage struct {
	Items []Item `json:"items"`
	// NextAfter continues; empty on the last page.
	NextAfter string `json:"next_after,omitempty"`
}

// ListItems returns the live items of a list after the value after; limit
// zero is the server's default.
func (c *Client) ListItems(ctx context.Context, name, after string, limit int) (ItemsPage, error) {
	v := url.Values{}
	if after != "" {
		v.Set("after", after)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out ItemsPage
	err := c.do(ctx, c.get("/admin/lists/"+pathEscape(name)+"/items", v), &out)
	return out, err
}

// AddItems adds items to a list, all or nothing; adding an item again
// replaces it, so the call is retried.
func (c *Client) AddItems(ctx context.Context, name string, items ...Item) ([]Item, error) {
	type in struct {
		Value     string `json:"value"`
		Reason    string `json:"reason,omitempty"`
		ExpiresAt string `json:"expires_at,omitempty"`
	}
	body := struct {
		Items []in `json:"items"`
	}{Items: make([]in, len(items))}
	for i, it := range items {
		body.Items[i] = in{Value: it.Value, Reason: it.Reason}
		if !it.ExpiresAt.IsZero() {
			body.Items[i].ExpiresAt = it.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}
	}
	var out struct {
		Items []Item `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/lists/" + pathEscape(name) + "/items", body: body, retry: true, timeout: c.cfg.Timeout}, &out)
	return out.Items, err
}

// DeleteItem removes value from a list (values with '/', such as CIDR
// ranges, included).
func (c *Client) DeleteItem(ctx context.Context, name, value string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/admin/lists/" + pathEscape(name) + "/items", query: url.Values{"value": {value}}, retry: true, timeout: c.cfg.Timeout}, nil)
}

// BacktestRequest starts a backtest: exactly one of Draft, Version and
// Rules names the candidate; the decisions of [From, To) are replayed.
type BacktestRequest struct {
	Draft      bool
	Version    int64
	Rules      json.RawMessage // an inline rule set {challenge_threshold, deny_threshold, rules}
	From, To   time.Time
	MerchantID string
	Decision   Outcome
}

// Backtest is a backtest's status; Result is set once it is done.
type Backtest struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Candidate struct {
		Kind    string `json:"kind"`
		Version int64  `json:"version,omitempty"`
		Hash    string `json:"hash"`
		Rules   int    `json:"rules"`
	} `json:"candidate"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Progress   struct {
		Processed int64 `json:"processed"`
		Total     int64 `json:"total"`
	} `json:"progress"`
	Error string `json:"error,omitempty"`
	// Result is the report (transitions, rule hits, label metrics,
	// flipped decisions), as JSON; see docs/backtest.md.
	Result json.RawMessage `json:"result,omitempty"`
}

// StartBacktest starts a backtest. It is not retried: a repeat would
// start another.
func (c *Client) StartBacktest(ctx context.Context, r BacktestRequest) (Backtest, error) {
	cand := map[string]any{}
	switch {
	case r.Draft:
		cand["draft"] = true
	case r.Version > 0:
		cand["version"] = r.Version
	case len(r.Rules) > 0:
		cand["rules"] = r.Rules
	}
	body := map[string]any{"candidate": cand}
	if !r.From.IsZero() {
		body["from"] = r.From.UTC().Format(time.RFC3339Nano)
	}
	if !r.To.IsZero() {
		body["to"] = r.To.UTC().Format(time.RFC3339Nano)
	}
	if r.MerchantID != "" {
		body["merchant_id"] = r.MerchantID
	}
	if r.Decision != "" {
		body["decision"] = r.Decision
	}
	var out Backtest
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/backtests", body: body, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// Backtest returns a backtest's status and, once done, its result.
func (c *Client) Backtest(ctx context.Context, id string) (Backtest, error) {
	var out Backtest
	err := c.do(ctx, c.get("/admin/backtests/"+pathEscape(id), nil), &out)
	return out, err
}

// CancelBacktest cancels a backtest.
func (c *Client) CancelBacktest(ctx context.Context, id string) (Backtest, error) {
	var out Backtest
	err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/backtests/" + pathEscape(id), retry: true, timeout: c.cfg.Timeout}, &out)
	return out, err
}

// Backup streams an online backup of the engine (GET /admin/backup, admin
// key) into w. It has no deadline but ctx's and is not retried once the
// stream started; a stream cut short is an error only if the copy fails
// (restore verifies the footer).
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: "/admin/backup"}, nil)
	if err != nil {
		return err
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("risk: backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("risk: backup: download: %w", err)
	}
	return nil
}

func (c *Client) get(path string, q url.Values) request {
	return request{method: http.MethodGet, path: path, query: q, retry: true, timeout: c.cfg.Timeout}
}
