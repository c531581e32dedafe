package limits

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
)

// storedVersion is the version of the policy, override and trust state
// values this code writes, in their "v" member. Values without one were
// written before the member existed, in the same layout (the API's JSON of
// Policy and Override at the time, and the trust state), and are read as
// version 0. They stay readable as long as a data dir may hold them: the
// policy and trust states never expire, so that is for good. A value of a
// later version than this code knows is an error, never a guess.
//
// The stored types below are separate from the API's Policy, Override and
// TrustEvent on purpose: renaming or adding an API field must not change
// what is on disk. Convert at the edges, here. Where a stored type has
// exactly the fields of its API type it is converted with a Go conversion,
// so a field added to the API type fails to compile here until someone
// decides whether it is stored.
const storedVersion = 1

type storedPolicy struct {
	V             int                     `json:"v,omitempty"`
	Name          string                  `json:"name"`
	Version       int64                   `json:"version"`
	BaseCurrency  string                  `json:"base_currency"`
	Rates         map[string]float64      `json:"rates"`
	Segments      []storedSegment         `json:"segments"`
	Trust         storedTrustBounds       `json:"trust"`
	LimitsFloor   storedAmounts           `json:"limits_floor"`
	LimitsCeiling storedAmounts           `json:"limits_ceiling"`
	Effects       map[string]storedEffect `json:"effects"`
	Author        string                  `json:"author,omitempty"`
	UpdatedAt     time.Time               `json:"updated_at,omitzero"`
}

type storedSegment struct {
	Name      string `json:"name"`
	When      string `json:"when,omitempty"`
	SingleMax int64  `json:"single_max"`
	DailyMax  int64  `json:"daily_max"`
}

type storedTrustBounds struct {
	Initial float64 `json:"initial"`
	Floor   float64 `json:"floor"`
	Ceiling float64 `json:"ceiling"`
}

type storedAmounts struct {
	SingleMax int64 `json:"single_max"`
	DailyMax  int64 `json:"daily_max"`
}

type storedEffect struct {
	TrustStep    float64 `json:"trust_step,omitempty"`
	TrustToFloor bool    `json:"trust_to_floor,omitempty"`
	BlockCard    bool    `json:"block_card,omitempty"`
	BlockDevice  bool    `json:"block_device,omitempty"`
	BlockFor     string  `json:"block_for,omitempty"`
}

type storedOverride struct {
	V         int       `json:"v,omitempty"`
	Entity    string    `json:"entity"`
	SingleMax int64     `json:"single_max,omitempty"`
	DailyMax  int64     `json:"daily_max,omitempty"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type storedTrustState struct {
	V       int                `json:"v,omitempty"`
	Trust   float64            `json:"trust"`
	Learned bool               `json:"learned,omitempty"`
	History []storedTrustEvent `json:"history,omitempty"`
}

type storedTrustEvent struct {
	At          time.Time `json:"at"`
	Kind        string    `json:"kind"`
	Label       string    `json:"label,omitempty"`
	DecisionID  string    `json:"decision_id,omitempty"`
	TrustBefore float64   `json:"trust_before"`
	TrustAfter  float64   `json:"trust_after"`
	Cause       string    `json:"cause"`
	Author      string    `json:"author,omitempty"`
	Note        string    `json:"note,omitempty"`
}

func encodePolicy(p Policy) ([]byte, error) {
	s := storedPolicy{
		V: storedVersion, Name: p.Name, Version: p.Version, BaseCurrency: p.BaseCurrency, Rates: p.Rates,
		Trust:         storedTrustBounds(p.Trust),
		LimitsFloor:   storedAmounts(p.LimitsFloor),
		LimitsCeiling: storedAmounts(p.LimitsCeiling),
		Author:        p.Author, UpdatedAt: p.UpdatedAt,
	}
	s.Segments = make([]storedSegment, len(p.Segments))
	for i, seg := range p.Segments {
		s.Segments[i] = storedSegment(seg)
	}
	if p.Effects != nil {
		s.Effects = make(map[string]storedEffect, len(p.Effects))
		for k, e := range p.Effects {
			s.Effects[k] = storedEffect(e)
		}
	}
	b, err := json.Marshal(s) // fails only on a NaN or infinite rate, which validation refuses
	if err != nil {
		return nil, fmt.Errorf("encode limits policy: %w", err)
	}
	return b, nil
}

func decodePolicy(b []byte) (Policy, error) {
	var s storedPolicy
	if err := json.Unmarshal(b, &s); err != nil {
		return Policy{}, fmt.Errorf("decode limits policy: %w: %w", err, engine.ErrCorrupt)
	}
	if err := checkVersion(s.V); err != nil {
		return Policy{}, fmt.Errorf("decode limits policy v%d: %w", s.Version, err)
	}
	p := Policy{
		Name: s.Name, Version: s.Version, BaseCurrency: s.BaseCurrency, Rates: s.Rates,
		Trust:         TrustBounds(s.Trust),
		LimitsFloor:   Amounts(s.LimitsFloor),
		LimitsCeiling: Amounts(s.LimitsCeiling),
		Author:        s.Author, UpdatedAt: s.UpdatedAt,
	}
	p.Segments = make([]Segment, len(s.Segments))
	for i, seg := range s.Segments {
		p.Segments[i] = Segment(seg)
	}
	if s.Effects != nil {
		p.Effects = make(map[string]Effect, len(s.Effects))
		for k, e := range s.Effects {
			p.Effects[k] = Effect(e)
		}
	}
	return p, nil
}

func encodeOverride(o Override) ([]byte, error) {
	b, err := json.Marshal(storedOverride{
		V: storedVersion, Entity: o.Entity, SingleMax: o.SingleMax, DailyMax: o.DailyMax, Currency: o.Currency,
		Reason: o.Reason, Author: o.Author, CreatedAt: o.CreatedAt, ExpiresAt: o.ExpiresAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode override: %w", err)
	}
	return b, nil
}

func decodeOverride(b []byte) (Override, error) {
	var s storedOverride
	if err := json.Unmarshal(b, &s); err != nil {
		return Override{}, fmt.Errorf("decode override: %w: %w", err, engine.ErrCorrupt)
	}
	if err := checkVersion(s.V); err != nil {
		return Override{}, fmt.Errorf("decode override of %s: %w", s.Entity, err)
	}
	return Override{
		Entity: s.Entity, SingleMax: s.SingleMax, DailyMax: s.DailyMax, Currency: s.Currency, Reason: s.Reason,
		Author: s.Author, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
	}, nil
}

func encodeTrustState(st *trustState) ([]byte, error) {
	s := storedTrustState{V: storedVersion, Trust: st.Trust, Learned: st.Learned}
	if len(st.History) > 0 {
		s.History = make([]storedTrustEvent, len(st.History))
		for i, ev := range st.History {
			s.History[i] = storedTrustEvent(ev)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode trust state: %w", err)
	}
	return b, nil
}

func decodeTrustState(b []byte) (trustState, error) {
	var s storedTrustState
	if err := json.Unmarshal(b, &s); err != nil {
		return trustState{}, fmt.Errorf("%w: %w", err, engine.ErrCorrupt)
	}
	if err := checkVersion(s.V); err != nil {
		return trustState{}, err
	}
	st := trustState{Trust: s.Trust, Learned: s.Learned}
	if len(s.History) > 0 {
		st.History = make([]TrustEvent, len(s.History))
		for i, ev := range s.History {
			st.History[i] = TrustEvent(ev)
		}
	}
	return st, nil
}

// checkVersion accepts the versions this code reads: 0 (no "v" member,
// written before it existed) and 1. A later version is reported as
// engine.ErrCorrupt: this build cannot read it, and must not act as if the
// value were absent.
func checkVersion(v int) error {
	if v < 0 || v > storedVersion {
		return fmt.Errorf("stored version %d, this build reads up to %d: %w", v, storedVersion, engine.ErrCorrupt)
	}
	return nil
}
