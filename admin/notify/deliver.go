package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// maxPerHook is how many due deliveries of one hook a delivery goroutine
// takes from one pass: what a dead receiver holds in memory.
const maxPerHook = 32

// Attempt is one delivery attempt, as the deliveries log keeps it.
type Attempt struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Status is the receiver's HTTP status, 0 when none came.
	Status     int   `json:"status"`
	OK         bool  `json:"ok"`
	DurationMS int64 `json:"duration_ms"`
	// Error says why the attempt failed.
	Error string `json:"error,omitempty"`
	// NextAttemptAt is when the event is tried again; zero when it will
	// not be (delivered, or given up).
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// GaveUp is set on the last failed attempt, MaxRetryAge after the
	// event: it can then only be sent again by hand.
	GaveUp bool `json:"gave_up,omitempty"`
}

// Sign returns the Risk-Signature header value of body for secret at t:
// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// backoff is the delay after the attempts-th failed attempt: RetryBase
// doubled per attempt up to MaxRetryDelay, then a random 80-120 % of it so
// retries of many events spread out.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.RetryBase
	for i := 1; i < attempts && d < n.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxRetryDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

type dueTask struct {
	key []byte
	t   task
}

// dispatch reads the due deliveries of every hook that has no delivery
// goroutine running, up to maxPerHook each, and starts one goroutine per
// such hook, so a slow or dead receiver holds back only itself and costs
// one goroutine. wait makes it wait for those goroutines (tests).
func (n *Notifier) dispatch(ctx context.Context, wait bool) error {
	now := n.now().UnixNano()
	done := make(chan struct{}, MaxHooks)
	started := 0
	for _, h := range n.Hooks() {
		n.busyMu.Lock()
		busy := n.busy[h.ID]
		n.busyMu.Unlock()
		if busy {
			continue
		}
		tasks, err := n.due(ctx, h.ID, now)
		if err != nil {
			return err
		}
		if len(tasks) == 0 {
			continue
		}
		n.busyMu.Lock()
		n.busy[h.ID] = true
		n.busyMu.Unlock()
		started++
		n.wg.Add(1)
		go func(h Hook, tasks []dueTask) {
			defer n.wg.Done()
			defer func() {
				n.busyMu.Lock()
				delete(n.busy, h.ID)
				n.busyMu.Unlock()
				done <- struct{}{}
			}()
			for _, dt := range tasks {
				if ctx.Err() != nil {
					return
				}
				if !n.attempt(ctx, h, dt) {
					return // the receiver is failing: the rest wait for the next pass
				}
			}
		}(h, tasks)
	}
	if wait {
		for range started {
			<-done
		}
	}
	return nil
}

// due reads up to maxPerHook deliveries of hook id due at now (Unix ns).
func (n *Notifier) due(ctx context.Context, id string, now int64) ([]dueTask, error) {
	var out []dueTask
	prefix := duePrefix(id)
	err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(prefix, kv.ScanOptions{}, func(k, v []byte) error {
			if len(out) == maxPerHook || int64(binary.BigEndian.Uint64(k[len(prefix):])) > now {
				return kv.Stop
			}
			var t task
			if err := decodeValue(v, &t); err != nil {
				return err
			}
			out = append(out, dueTask{key: bytes.Clone(k), t: t})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// maxPendingCount caps the count of Pending.
const maxPendingCount = 100_000

// Pending counts the deliveries of hook id waiting in the outbox (due now
// or later), up to maxPendingCount.
func (n *Notifier) Pending(ctx context.Context, id string) (int, error) {
	count := 0
	err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(duePrefix(id), kv.ScanOptions{KeysOnly: true}, func(_, _ []byte) error {
			if count == maxPendingCount {
				return kv.Stop
			}
			count++
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("count pending deliveries: %w", err)
	}
	return count, nil
}

// dropQueue deletes every pending delivery of hook id, a thousand per
// transaction.
func (n *Notifier) dropQueue(ctx context.Context, id string) error {
	prefix := duePrefix(id)
	for {
		var keys [][]byte
		err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
			return tx.Scan(prefix, kv.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				if len(keys) == 1000 {
					return kv.Stop
				}
				keys = append(keys, bytes.Clone(k))
				return nil
			})
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// attempt delivers one due task and records the outcome: delivered, due
// again after a backoff, or given up. It reports whether the receiver
// took it.
func (n *Notifier) attempt(ctx context.Context, h Hook, dt dueTask) bool {
	t := dt.t
	body, err := n.eventBody(ctx, t.EventID)
	if errors.Is(err, engine.ErrNotFound) {
		// Expired (older than Retention): nothing left to send.
		_ = kv.Delete(ctx, n.cfg.DB, dt.key)
		return true
	}
	if err != nil {
		if ctx.Err() == nil { // not shutting down
			n.cfg.Log.Error("webhooks: read event", "event_id", t.EventID, "err", err)
		}
		return false
	}
	at := n.now()
	status, derr := n.send(ctx, h, t.EventID, t.Type, body)
	if ctx.Err() != nil {
		return false // shutting down: leave it due
	}
	t.Attempts++
	a := Attempt{EventID: t.EventID, Type: t.Type, Attempt: t.Attempts, At: at, Status: status, OK: derr == nil, DurationMS: n.now().Sub(at).Milliseconds()}
	var next *time.Time
	if derr == nil {
		n.delivered.Add(1)
	} else {
		n.failed.Add(1)
		a.Error = derr.Error()
		due := n.now().Add(n.backoff(t.Attempts))
		if due.Sub(t.Since) > n.cfg.MaxRetryAge {
			a.GaveUp = true
			n.gaveUp.Add(1)
		} else {
			a.NextAttemptAt, next = due, &due
		}
	}
	// The attempt was made: record it even if Close comes meanwhile, so
	// a delivered event is not sent again.
	err = n.cfg.DB.Update(context.WithoutCancel(ctx), func(tx kv.Tx) error {
		if err := tx.Delete(dt.key); err != nil {
			return err
		}
		if next != nil {
			if err := n.putTask(tx, t, *next); err != nil {
				return err
			}
		}
		return n.logAttempt(tx, h.ID, a)
	})
	if err != nil {
		n.cfg.Log.Error("webhooks: record delivery", "event_id", t.EventID, "hook_id", h.ID, "err", err)
	}
	return derr == nil
}

func (n *Notifier) logAttempt(tx kv.Tx, hookID string, a Attempt) error {
	v, err := encodeValue(a)
	if err != nil {
		return err
	}
	return tx.SetTTL(logKey(hookID, a.At.UnixNano(), a.EventID), v, n.cfg.Retention)
}

func (n *Notifier) eventBody(ctx context.Context, id string) ([]byte, error) {
	body, err := kv.Get(ctx, n.cfg.DB, []byte(prefixEvent+id))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("event %q: %w", id, engine.ErrNotFound)
	}
	return body, err
}

// send makes one signed POST of body to h and returns the status; any
// answer but 2xx within Timeout is an error. The dialer refuses blocked
// addresses unless AllowPrivate; redirects are not followed.
func (n *Notifier) send(ctx context.Context, h Hook, eventID, typ string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(eventIDHeader, eventID)
	req.Header.Set(eventTypeHeader, typ)
	req.Header.Set(signatureHeader, Sign(h.Secret, n.now(), body))
	resp, err := n.client.Do(req)
	if err != nil {
		if errors.Is(err, errPrivate) {
			return 0, errors.New("refused: the host resolves to a loopback, private or link-local address")
		}
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return 0, fmt.Errorf("no answer within %s", n.cfg.Timeout)
		}
		return 0, errors.New("connection failed")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Test sends a webhook.test event to hook id at once, outside the outbox,
// records the attempt in its deliveries log and returns it.
func (n *Notifier) Test(ctx context.Context, id string) (Attempt, error) {
	h, err := n.Hook(id)
	if err != nil {
		return Attempt{}, err
	}
	now := n.now()
	ev, err := newEvent(engine.NewID("evt_", now), EventTest, now, map[string]string{"webhook_id": h.ID, "message": "test event from the risk engine"})
	if err != nil {
		return Attempt{}, err
	}
	body, err := jsonBody(ev)
	if err != nil {
		return Attempt{}, err
	}
	status, derr := n.send(ctx, h, ev.ID, ev.Type, body)
	a := Attempt{EventID: ev.ID, Type: ev.Type, Attempt: 1, At: now, Status: status, OK: derr == nil, DurationMS: n.now().Sub(now).Milliseconds()}
	if derr != nil {
		a.Error = derr.Error()
	}
	if err := n.cfg.DB.Update(ctx, func(tx kv.Tx) error { return n.logAttempt(tx, h.ID, a) }); err != nil {
		return Attempt{}, fmt.Errorf("record test delivery: %w", err)
	}
	return a, nil
}

// Retry puts event eventID in hook id's outbox again, due now, with a new
// 24-hour retry window: the hand resend of an event that failed.
func (n *Notifier) Retry(ctx context.Context, id, eventID string) error {
	h, err := n.Hook(id)
	if err != nil {
		return err
	}
	body, err := n.eventBody(ctx, eventID)
	if err != nil {
		return err
	}
	ev, err := decodeEvent(body)
	if err != nil {
		return err
	}
	if !h.subscribes(ev.Type) {
		return fmt.Errorf("webhook %q is not subscribed to %s: %w", id, ev.Type, engine.ErrConflict)
	}
	now := n.now()
	err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		return n.putTask(tx, task{EventID: ev.ID, HookID: h.ID, Type: ev.Type, Since: now}, now)
	})
	if err != nil {
		return fmt.Errorf("queue resend: %w", err)
	}
	n.nudge()
	return nil
}

// Deliveries returns up to limit attempts of hook id, newest first, from
// before cursor ("" is the newest), and the cursor of the next page.
func (n *Notifier) Deliveries(ctx context.Context, id string, limit int, cursor string) ([]Attempt, string, error) {
	if _, err := n.Hook(id); err != nil {
		return nil, "", err
	}
	prefix := logPrefix(id)
	var from []byte // nil: the newest attempt
	if cursor != "" {
		b, err := hex.DecodeString(cursor)
		if err != nil || len(b) < 8 {
			return nil, "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this endpoint returned")
		}
		from = append(append([]byte{}, prefix...), b...)
	}
	out := []Attempt{}
	next := ""
	err := n.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(prefix, kv.ScanOptions{Reverse: true, From: from}, func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(out) == limit {
				next = hex.EncodeToString(out0(k, len(prefix)))
				return kv.Stop
			}
			var a Attempt
			if err := decodeValue(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("read deliveries: %w", err)
	}
	return out, next, nil
}

// out0 is the part of a deliveries log key after its hook prefix, so the
// next page starts at it (inclusive: the reverse seek lands on it).
func out0(k []byte, n int) []byte { return append([]byte{}, k[n:]...) }

func jsonBody(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}

func decodeEvent(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return ev, nil
}

// Deliver runs one pass of the dispatcher and waits for the attempts it
// started: the background loop does this every PollInterval; tests and
// tools call it to deliver what is due now.
func (n *Notifier) Deliver(ctx context.Context) error { return n.dispatch(ctx, true) }
