package features_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestBucketSize(t *testing.T) {
	tests := []struct {
		window string
		want   time.Duration
	}{
		{"1m", time.Second}, {"10m", 10 * time.Second}, {"1h", time.Minute}, {"24h", 15 * time.Minute},
		{"7d", 2 * time.Hour}, {"30d", 12 * time.Hour}, {"90d", 24 * time.Hour}, {"365d", 24 * time.Hour},
	}
	for _, tt := range tests {
		w, err := features.ParseWindow(tt.window)
		if err != nil {
			t.Fatal(err)
		}
		got := features.BucketSize(w)
		if got != tt.want {
			t.Errorf("BucketSize(%s) = %v, want %v", tt.window, got, tt.want)
		}
		if got*60 > w {
			t.Errorf("BucketSize(%s) = %v is more than 1/60 of the window", tt.window, got)
		}
	}
	for _, bad := range []string{"30s", "366d", "abc", "", "-1h", "1.5d"} {
		if _, err := features.ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) succeeded", bad)
		}
	}
}

func card(fp string, at time.Time, amount int64) engine.Payment {
	return engine.Payment{OccurredAt: at, Amount: amount, Card: engine.Card{Fingerprint: fp}}
}

func TestAggregates(t *testing.T) {
	defs := []features.Definition{
		{Name: "n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"},
		{Name: "total", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Sum, Field: "amount", Window: "1h"},
		{Name: "lo", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Min, Field: "amount", Window: "1h"},
		{Name: "hi", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Max, Field: "amount", Window: "1h"},
		{Name: "mean", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Avg, Field: "amount", Window: "1h"},
		{Name: "first", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.FirstSeen, Window: "1h"},
		{Name: "last", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.LastSeen, Window: "1h"},
		{Name: "merchants", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Distinct, Field: "merchant.id", Window: "1h"},
		{Name: "denies", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h", Where: `decision == "deny"`},
		{Name: "web", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h", Where: `attributes.channel == "web"`},
		{Name: "pair", Entity: features.Paths{"card.fingerprint", "merchant.id"}, Aggregate: features.Count, Window: "1h"},
		{Name: "items", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Sum, Field: "attributes.items", Window: "1h"},
	}
	s := openStore(t, t.TempDir(), defs)
	events := []struct {
		at       time.Duration
		amount   int64
		merchant string
		outcome  engine.Outcome
		channel  string
	}{
		{0, 500, "m1", engine.Allow, "web"},
		{10 * time.Minute, 200, "m2", engine.Deny, "app"},
		{20 * time.Minute, 900, "m1", engine.Deny, "web"},
	}
	for _, e := range events {
		p := card("fp1", t0.Add(e.at), e.amount)
		p.Merchant.ID = e.merchant
		p.Attributes = map[string]any{"channel": e.channel, "items": 2.0}
		commit(t, s, record(p, e.outcome))
	}
	at := t0.Add(30 * time.Minute)
	probe := card("fp1", at, 1)
	probe.Merchant.ID = "m1"
	want := map[string]float64{
		"n": 3, "total": 1600, "lo": 200, "hi": 900, "mean": 1600.0 / 3,
		"first": (30 * time.Minute).Seconds(), "last": (10 * time.Minute).Seconds(),
		"merchants": 2, "denies": 2, "web": 2, "pair": 2, "items": 6,
	}
	for name, w := range want {
		if got := value(t, s, probe, name); math.Abs(got-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	// An entity never seen reads empty; first/last seen read -1.
	other := card("fp_other", at, 1)
	for name, w := range map[string]float64{"n": 0, "total": 0, "lo": 0, "mean": 0, "first": -1, "last": -1, "merchants": 0} {
		if got := value(t, s, other, name); got != w {
			t.Errorf("unseen %s = %v, want %v", name, got, w)
		}
	}
	// A payment without the entity field contributes nothing and reads empty.
	commit(t, s, record(engine.Payment{OccurredAt: at, Amount: 5}, engine.Allow))
	if got := value(t, s, engine.Payment{OccurredAt: at}, "n"); got != 0 {
		t.Errorf("missing entity reads %v, want 0", got)
	}
}

func TestWindowEdges(t *testing.T) {
	defs := []features.Definition{{Name: "n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"}}
	s := openStore(t, t.TempDir(), defs)
	// Buckets are one minute for a one-hour window.
	commit(t, s, record(card("fp", t0, 1), engine.Allow))                      // bucket 10:00
	commit(t, s, record(card("fp", t0.Add(59*time.Second), 1), engine.Allow))  // same bucket
	commit(t, s, record(card("fp", t0.Add(30*time.Minute), 1), engine.Allow))  // 10:30
	commit(t, s, record(card("fp", t0.Add(-10*time.Minute), 1), engine.Allow)) // late event, 09:50
	commit(t, s, record(card("fp", t0.Add(-2*time.Hour), 1), engine.Allow))    // older than the window at any read below
	tests := []struct {
		name string
		at   time.Time
		want float64
	}{
		{"only the late event is before", t0.Add(-5 * time.Minute), 1},
		{"just after the first bucket", t0.Add(time.Minute), 3},
		{"all live", t0.Add(40 * time.Minute), 4},
		{"first bucket still inside (bucket holding t-1h)", t0.Add(time.Hour + 30*time.Second), 3},
		{"first bucket expired", t0.Add(time.Hour + time.Minute), 1},
		{"late event expired too", t0.Add(time.Hour + 30*time.Minute), 1},
		{"everything expired", t0.Add(2 * time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := value(t, s, card("fp", tt.at, 1), "n"); got != tt.want {
				t.Errorf("count at %s = %v, want %v", tt.at.Format("15:04:05"), got, tt.want)
			}
		})
	}
}

func TestDistinctSwitchesToSketch(t *testing.T) {
	defs := []features.Definition{{Name: "cards", Entity: features.Paths{"device.id"}, Aggregate: features.Distinct, Field: "card.fingerprint", Window: "24h"}}
	s := openStore(t, t.TempDir(), defs)
	dev := func(fp string, at time.Time) engine.Payment {
		return engine.Payment{OccurredAt: at, Device: engine.Device{ID: "d1"}, Card: engine.Card{Fingerprint: fp}}
	}
	for i := 0; i < features.DistinctExactCap; i++ {
		commit(t, s, record(dev(fmt.Sprintf("fp%d", i), t0), engine.Allow))
		commit(t, s, record(dev(fmt.Sprintf("fp%d", i), t0), engine.Allow)) // repeats count once
	}
	if got := value(t, s, dev("x", t0.Add(time.Hour)), "cards"); got != features.DistinctExactCap {
		t.Fatalf("exact distinct = %v, want %d", got, features.DistinctExactCap)
	}
	const total = 5000
	for i := features.DistinctExactCap; i < total; i++ {
		commit(t, s, record(dev(fmt.Sprintf("fp%d", i), t0.Add(time.Duration(i)*time.Second)), engine.Allow))
	}
	got := value(t, s, dev("x", t0.Add(3*time.Hour)), "cards")
	// HyperLogLog at precision 12 has a standard error of about 1.6%; allow 3 sigma.
	if rel := math.Abs(got-total) / total; rel > 0.05 {
		t.Errorf("approximate distinct = %v, want %d within 5%% (off by %.1f%%)", got, total, rel*100)
	}
}

func TestDefinitionValidation(t *testing.T) {
	ok := features.Definition{Name: "n", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"}
	tests := []struct {
		name   string
		mutate func(d *features.Definition)
		field  string
	}{
		{"bad name", func(d *features.Definition) { d.Name = "Bad-Name" }, "name"},
		{"no entity", func(d *features.Definition) { d.Entity = nil }, "entity"},
		{"unknown entity path", func(d *features.Definition) { d.Entity = features.Paths{"card.number"} }, "entity"},
		{"unknown aggregate", func(d *features.Definition) { d.Aggregate = "median" }, "aggregate"},
		{"sum without field", func(d *features.Definition) { d.Aggregate = features.Sum }, "field"},
		{"count with field", func(d *features.Definition) { d.Field = "amount" }, "field"},
		{"window too short", func(d *features.Definition) { d.Window = "30s" }, "window"},
		{"window too long", func(d *features.Definition) { d.Window = "400d" }, "window"},
		{"bad where", func(d *features.Definition) { d.Where = `decision = "deny"` }, "where"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.mutate(&d)
			err := features.Validate([]features.Definition{d}, compileFilter)
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			var fe *engine.FieldError
			if tt.field == "where" {
				return // a compile error from rules, with its own positions
			}
			if !asFieldError(err, &fe) || fe.Field != tt.field {
				t.Errorf("err = %v, want a field error on %q", err, tt.field)
			}
		})
	}
	if err := features.Validate([]features.Definition{ok, ok}, compileFilter); err == nil {
		t.Error("duplicate names accepted")
	}
}
