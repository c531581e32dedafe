package backtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
)

// Backtests with a Config.Store keep every backtest's status in it, so any
// node of a cluster answers GET /admin/backtests/{id} and the list, a
// cancel sent to another node reaches the node running the backtest, and a
// single node still shows finished backtests after a restart.
//
// A backtest runs on the node that accepted it. That node writes the
// status when the backtest is accepted, starts and ends, and every
// Config.Heartbeat while it is queued or running: the progress, and the
// time of the write. A status whose writer has not written for
// Config.StaleAfter belongs to a node that stopped (a crash, a restart, a
// partition); readers report it failed. Another node cancels by setting
// cancel_requested; the running node sees it at its next heartbeat.

// Defaults for the shared status.
const (
	DefaultHeartbeat  = time.Second
	DefaultStaleAfter = 30 * time.Second
	DefaultKeepFor    = 30 * 24 * time.Hour
)

const prefixStatus = keyspace.Backtest

// storedVersion is the version of storedStatus this code writes.
const storedVersion = 1

// storedStatus is the stored form of a Status. The result is kept as the
// JSON the API served when the backtest finished: a finished result is a
// report nothing reads back but the API, like the before and after of an
// audit entry, so its shape follows the API's.
type storedStatus struct {
	V          int             `json:"v"`
	ID         string          `json:"id"`
	State      string          `json:"state"`
	Candidate  storedCandidate `json:"candidate"`
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	MerchantID string          `json:"merchant_id,omitempty"`
	Decision   string          `json:"decision,omitempty"`
	CreatedBy  string          `json:"created_by"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Processed  int64           `json:"processed"`
	Total      int64           `json:"total"`
	Failed     bool            `json:"failed,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	// WrittenAt is the writer's clock at the last write: the heartbeat.
	WrittenAt       time.Time `json:"written_at"`
	CancelRequested bool      `json:"cancel_requested,omitempty"`
}

type storedCandidate struct {
	Kind    string `json:"kind"`
	Version int64  `json:"version,omitempty"`
	Hash    string `json:"hash"`
	Rules   int    `json:"rules"`
}

func (s State) final() bool { return s == StateDone || s == StateCancelled || s == StateFailed }

func toStored(st Status, now time.Time) (storedStatus, error) {
	out := storedStatus{
		V: storedVersion, ID: st.ID, State: string(st.State), Candidate: storedCandidate(st.Candidate),
		From: st.From, To: st.To, MerchantID: st.MerchantID, Decision: string(st.Decision),
		CreatedBy: st.CreatedBy, CreatedAt: st.CreatedAt, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
		Processed: st.Progress.Processed, Total: st.Progress.Total, Failed: st.Error != "", WrittenAt: now.UTC(),
	}
	if st.Result != nil {
		b, err := json.Marshal(st.Result)
		if err != nil {
			return storedStatus{}, fmt.Errorf("encode backtest result: %w", err)
		}
		out.Result = b
	}
	return out, nil
}

// status converts s back; a queued or running backtest whose writer is
// silent since staleAfter before now is reported failed.
func (s storedStatus) status(now time.Time, staleAfter time.Duration) (Status, error) {
	st := Status{
		ID: s.ID, State: State(s.State), Candidate: CandidateInfo(s.Candidate), From: s.From, To: s.To,
		MerchantID: s.MerchantID, Decision: engine.Outcome(s.Decision), CreatedBy: s.CreatedBy,
		CreatedAt: s.CreatedAt, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
		Progress: Progress{Processed: s.Processed, Total: s.Total},
	}
	if s.Failed {
		st.Error = failedText
	}
	if len(s.Result) > 0 {
		st.Result = new(Result)
		if err := json.Unmarshal(s.Result, st.Result); err != nil {
			return Status{}, fmt.Errorf("decode result of backtest %s: %w: %w", s.ID, err, engine.ErrCorrupt)
		}
	}
	if !st.State.final() && s.CancelRequested {
		st.State = StateCancelled // final once the running node sees the request, as a local cancel
	}
	if !st.State.final() && now.Sub(s.WrittenAt) > staleAfter {
		st.State, st.FinishedAt = StateFailed, s.WrittenAt
		st.Error = "the node running the backtest stopped before it finished; start it again"
	}
	return st, nil
}

func decodeStored(b []byte) (storedStatus, error) {
	var s storedStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return storedStatus{}, fmt.Errorf("decode backtest status: %w: %w", err, engine.ErrCorrupt)
	}
	if s.V < 1 || s.V > storedVersion {
		return storedStatus{}, fmt.Errorf("backtest status %s: stored version %d, this build reads 1 to %d: %w",
			s.ID, s.V, storedVersion, engine.ErrCorrupt)
	}
	return s, nil
}

// save writes j's status. It reports whether another node asked to cancel
// j. Called without b.mu held.
func (b *Backtests) save(ctx context.Context, j *job) (cancelRequested bool, err error) {
	// One save of j at a time, each with a snapshot taken inside it: a
	// slower save never overwrites a newer state.
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	b.mu.Lock()
	st := j.status()
	b.mu.Unlock()
	now := b.cfg.Now()
	s, err := toStored(st, now)
	if err != nil {
		return false, err
	}
	key := []byte(prefixStatus + st.ID)
	err = b.cfg.Store.Update(ctx, func(tx kv.Tx) error {
		old, err := tx.Get(key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		default:
			prev, err := decodeStored(old)
			if err != nil {
				return err
			}
			s.CancelRequested = prev.CancelRequested
		}
		cancelRequested = s.CancelRequested && !State(s.State).final()
		data, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return tx.SetTTL(key, data, b.cfg.KeepFor)
	})
	if err != nil {
		return false, fmt.Errorf("store status of backtest %s: %w", st.ID, err)
	}
	return cancelRequested, nil
}

// saveLogged saves j and acts on a cancel another node asked for.
func (b *Backtests) saveLogged(j *job) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	requested, err := b.save(ctx, j)
	if err != nil {
		b.cfg.Log.Warn("backtest status not shared", "backtest", j.id, "err", err)
		return
	}
	if requested {
		b.mu.Lock()
		b.cancelLocked(j)
		b.mu.Unlock()
		if _, err := b.save(ctx, j); err != nil {
			b.cfg.Log.Warn("backtest status not shared", "backtest", j.id, "err", err)
		}
	}
}

// heartbeat saves the status of every queued or running backtest of this
// node each Config.Heartbeat until ctx ends.
func (b *Backtests) heartbeat(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		var active []*job
		for _, j := range b.order {
			if !j.state.final() {
				active = append(active, j)
			}
		}
		b.mu.Unlock()
		for _, j := range active {
			b.saveLogged(j)
		}
	}
}

// getStored reads a backtest another node (or an earlier process) ran.
func (b *Backtests) getStored(ctx context.Context, id string) (Status, error) {
	v, err := kv.Get(ctx, b.cfg.Store, []byte(prefixStatus+id))
	if errors.Is(err, kv.ErrNotFound) {
		return Status{}, fmt.Errorf("backtest %q: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return Status{}, fmt.Errorf("read backtest %s: %w", id, err)
	}
	s, err := decodeStored(v)
	if err != nil {
		return Status{}, err
	}
	return s.status(b.cfg.Now(), b.cfg.StaleAfter)
}

// listStored returns the newest MaxJobs stored statuses, newest first,
// without results.
func (b *Backtests) listStored(ctx context.Context) ([]Status, error) {
	var out []Status
	now := b.cfg.Now()
	err := b.cfg.Store.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixStatus), kv.ScanOptions{Reverse: true}, func(_, v []byte) error {
			s, err := decodeStored(v)
			if err != nil {
				return err
			}
			s.Result = nil
			st, err := s.status(now, b.cfg.StaleAfter)
			if err != nil {
				return err
			}
			out = append(out, st)
			if len(out) >= b.cfg.MaxJobs {
				return kv.Stop
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list backtests: %w", err)
	}
	return out, nil
}

// cancelStored asks the node running a backtest to cancel it, and returns
// its status as cancelled. A final backtest is left as it is.
func (b *Backtests) cancelStored(ctx context.Context, id string) (Status, error) {
	key := []byte(prefixStatus + id)
	var st Status
	err := b.cfg.Store.Update(ctx, func(tx kv.Tx) error {
		v, err := tx.Get(key)
		if errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("backtest %q: %w", id, engine.ErrNotFound)
		}
		if err != nil {
			return err
		}
		s, err := decodeStored(v)
		if err != nil {
			return err
		}
		if st, err = s.status(b.cfg.Now(), b.cfg.StaleAfter); err != nil {
			return err
		}
		if st.State.final() {
			return nil
		}
		s.CancelRequested = true
		data, err := json.Marshal(s)
		if err != nil {
			return err
		}
		st.State = StateCancelled
		return tx.SetTTL(key, data, b.cfg.KeepFor)
	})
	return st, err
}

// mergeNewestFirst merges this node's statuses with the stored ones,
// keeping this node's for a backtest in both, newest first, at most max.
func mergeNewestFirst(local, stored []Status, max int) []Status {
	seen := make(map[string]bool, len(local))
	out := make([]Status, 0, len(local)+len(stored))
	for _, s := range local {
		seen[s.ID] = true
		out = append(out, s)
	}
	for _, s := range stored {
		if !seen[s.ID] {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Status) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(len(out), max)]
}
