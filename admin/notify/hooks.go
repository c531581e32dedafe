package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// MaxDescriptionLen bounds a webhook's description.
const MaxDescriptionLen = 500

// Hook is one webhook: where events of the subscribed types are delivered.
// Secret signs every delivery; it is stored so that it can sign, and shown
// only once, when the hook is created.
type Hook struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
	Secret      string    `json:"secret"`
}

// subscribes reports whether h receives events of type t.
func (h *Hook) subscribes(t string) bool { return slices.Contains(h.Events, t) }

// HookSpec is what a webhook is created from.
type HookSpec struct {
	URL         string
	Events      []string
	Description string
}

// newSecret returns a signing secret: "whsec_" and 32 random bytes in hex.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "whsec_" + hex.EncodeToString(b[:])
}

// Create checks spec (the URL against the SSRF ranges too) and stores a
// new webhook, returned with its secret.
func (n *Notifier) Create(ctx context.Context, spec HookSpec) (Hook, error) {
	if _, err := checkURL(ctx, spec.URL, n.cfg.AllowPrivate, n.cfg.Resolver); err != nil {
		return Hook{}, err
	}
	if len(spec.Events) == 0 {
		return Hook{}, engine.Invalid("events", "required", "events must name at least one event type")
	}
	var events []string
	for _, e := range spec.Events {
		if !knownEvent(e) {
			return Hook{}, engine.Invalid("events", "unknown_event", fmt.Sprintf("unknown event type %q", e))
		}
		if !slices.Contains(events, e) {
			events = append(events, e)
		}
	}
	if len(spec.Description) > MaxDescriptionLen {
		return Hook{}, engine.Invalid("description", "too_long", fmt.Sprintf("description is longer than %d characters", MaxDescriptionLen))
	}
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	cur := *n.hooks.Load()
	if len(cur) >= MaxHooks {
		return Hook{}, fmt.Errorf("%d webhooks exist, the most allowed: %w", MaxHooks, engine.ErrConflict)
	}
	now := n.now()
	h := Hook{
		ID: engine.NewID("wh_", now), URL: spec.URL, Events: events, Description: spec.Description,
		CreatedAt: now, CreatedBy: engine.Actor(ctx), Secret: newSecret(),
	}
	v, err := encodeValue(h)
	if err != nil {
		return Hook{}, err
	}
	if err := kv.Set(ctx, n.cfg.DB, []byte(prefixHook+h.ID), v); err != nil {
		return Hook{}, fmt.Errorf("store webhook: %w", err)
	}
	next := append(slices.Clone(cur), h)
	slices.SortFunc(next, func(a, b Hook) int { return cmpString(a.ID, b.ID) })
	n.hooks.Store(&next)
	return h, nil
}

// Hooks returns every webhook, oldest first, secrets included: callers
// that show them must drop the secret.
func (n *Notifier) Hooks() []Hook { return *n.hooks.Load() }

// Hook returns webhook id, or an error wrapping engine.ErrNotFound.
func (n *Notifier) Hook(id string) (Hook, error) {
	for _, h := range *n.hooks.Load() {
		if h.ID == id {
			return h, nil
		}
	}
	return Hook{}, fmt.Errorf("webhook %q: %w", id, engine.ErrNotFound)
}

// Delete removes webhook id and its pending deliveries; its deliveries
// log expires.
func (n *Notifier) Delete(ctx context.Context, id string) (Hook, error) {
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	h, err := n.Hook(id)
	if err != nil {
		return Hook{}, err
	}
	if err := kv.Delete(ctx, n.cfg.DB, []byte(prefixHook+id)); err != nil {
		return Hook{}, fmt.Errorf("delete webhook: %w", err)
	}
	next := slices.DeleteFunc(slices.Clone(*n.hooks.Load()), func(x Hook) bool { return x.ID == id })
	n.hooks.Store(&next)
	// The hook is gone: its queue goes too, even if the caller has.
	if err := n.dropQueue(context.WithoutCancel(ctx), id); err != nil {
		return h, fmt.Errorf("drop the deleted webhook's deliveries: %w", err)
	}
	return h, nil
}

func (n *Notifier) loadHooks(ctx context.Context) ([]Hook, error) {
	hooks := []Hook{}
	err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixHook), kv.ScanOptions{}, func(_, v []byte) error {
			var h Hook
			if err := decodeValue(v, &h); err != nil {
				return err
			}
			hooks = append(hooks, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	return hooks, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func encodeValue(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append([]byte{formatJSON}, b...), nil
}

func decodeValue(b []byte, v any) error {
	if len(b) == 0 || b[0] != formatJSON {
		return errors.New("unknown value format")
	}
	return json.Unmarshal(b[1:], v)
}
