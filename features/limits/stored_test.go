package limits_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/limits"
)

// Values as the release before stored types wrote them: the API's JSON of
// Policy and Override, and the trust state, with no version member. The
// clock of these tests is 2026-11-22T10:00:00Z.
var preVersionLimits = map[string]string{
	"lp/policy": `{"name":"tight","version":3,"base_currency":"USD","rates":{"EUR":0.9},` +
		`"segments":[{"name":"new","when":"account.age_days < 7","single_max":1000,"daily_max":2000},{"name":"rest","single_max":50000,"daily_max":90000}],` +
		`"trust":{"initial":1,"floor":0.5,"ceiling":2},"limits_floor":{"single_max":100,"daily_max":200},` +
		`"limits_ceiling":{"single_max":0,"daily_max":0},"effects":{"fraud":{"trust_to_floor":true,"block_card":true,"block_for":"30d"}},` +
		`"author":"ann","updated_at":"2026-11-01T00:00:00Z"}`,
	"lo/account:acc_vip": `{"entity":"account:acc_vip","daily_max":5000000,"currency":"USD","reason":"known wholesaler",` +
		`"author":"bob","created_at":"2026-11-20T00:00:00Z","expires_at":"2026-12-20T00:00:00Z"}`,
	"lt/account:acc_vip": `{"trust":1,"history":[{"at":"2026-11-20T00:00:00Z","kind":"override_set","trust_before":1,"trust_after":1,` +
		`"cause":"override set until 2026-12-20T00:00:00Z: known wholesaler","author":"bob"}]}`,
	"lt/account:acc_good": `{"trust":1.5,"learned":true,"history":[{"at":"2026-11-21T00:00:00Z","kind":"label","label":"challenge_passed",` +
		`"decision_id":"d_1","trust_before":1,"trust_after":1.5,"cause":"challenge_passed on decision d_1 raised trust from 1 to 1.5","author":"gateway"}]}`,
}

// TestLimitsReadPreVersionValues: policy, overrides and trust written
// before the stored format had a version load and answer the same.
func TestLimitsReadPreVersionValues(t *testing.T) {
	f := openLimiter(t, t.TempDir(), newLimClock(), nil)
	writeRaw(t, f.store.KV(), preVersionLimits)
	if err := f.lim.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	pol := f.lim.Policy()
	if pol.Name != "tight" || pol.Version != 3 || pol.Author != "ann" || len(pol.Segments) != 2 ||
		pol.Segments[0].When != "account.age_days < 7" || pol.Segments[1].DailyMax != 90_000 ||
		pol.Trust != (limits.TrustBounds{Initial: 1, Floor: 0.5, Ceiling: 2}) || pol.Rates["EUR"] != 0.9 ||
		pol.LimitsFloor != (limits.Amounts{SingleMax: 100, DailyMax: 200}) ||
		pol.Effects["fraud"] != (limits.Effect{TrustToFloor: true, BlockCard: true, BlockFor: "30d"}) ||
		!pol.UpdatedAt.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("policy = %+v", pol)
	}
	if got := f.limits(t, f.payment("acc_good", 1, "USD")); got.Trust != 1.5 || got.SingleMax != 75_000 {
		t.Errorf("acc_good: trust %v single %d, want 1.5 and 75000", got.Trust, got.SingleMax)
	}
	if got := f.limits(t, f.payment("acc_vip", 1, "USD")); got.DailyMax != 5_000_000 || got.SingleMax != 50_000 {
		t.Errorf("acc_vip: daily %d single %d, want the override's 5000000 and the segment's 50000", got.DailyMax, got.SingleMax)
	}
	d, err := f.lim.Describe(context.Background(), "account", "acc_vip", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Override == nil || d.Override.Reason != "known wholesaler" || d.Override.Author != "bob" ||
		len(d.History) != 1 || d.History[0].Kind != limits.EventOverrideSet || d.History[0].Author != "bob" {
		t.Errorf("describe acc_vip = override %+v history %+v", d.Override, d.History)
	}
}

// TestLimitsWriteVersionedValues: what is written now carries the version
// first, in the stored layout, and reads back after a restart.
func TestLimitsWriteVersionedValues(t *testing.T) {
	dir := t.TempDir()
	clock := newLimClock()
	pol := limPolicy()
	f := openLimiter(t, dir, clock, &pol)
	ctx := engine.WithPrincipal(context.Background(), engine.Principal{Name: "ann"})
	if _, err := f.lim.SetOverride(ctx, "account", "acc_2", limits.Override{SingleMax: 7_000, Reason: "r", ExpiresAt: clock.since(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rec := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Challenge)
	f.label(t, rec, engine.LabelChallengePassed)

	raw := readRawPrefix(t, f.store.KV(), "l")
	wantOverride := `{"v":1,"entity":"account:acc_2","single_max":7000,"currency":"USD","reason":"r","author":"ann",` +
		`"created_at":"2026-11-22T10:00:00Z","expires_at":"2026-11-22T11:00:00Z"}`
	if got := raw["lo/account:acc_2"]; got != wantOverride {
		t.Errorf("stored override =\n%s\nwant\n%s", got, wantOverride)
	}
	for _, key := range []string{"lp/policy", "lt/account:acc_1", "lt/account:acc_2"} {
		if v := raw[key]; !strings.HasPrefix(v, `{"v":1,`) {
			t.Errorf("stored %s = %s, want version 1 first", key, v)
		}
	}
	if err := f.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	g := openLimiter(t, dir, clock, nil)
	if got := g.lim.Policy(); got.Version != 1 || len(got.Segments) != len(pol.Segments) || got.Trust != pol.Trust {
		t.Errorf("policy after restart = %+v", got)
	}
	if got := g.limits(t, g.payment("acc_1", 1, "USD")); got.Trust != 1.25 {
		t.Errorf("trust after restart = %v, want 1.25", got.Trust)
	}
	if got := g.limits(t, g.payment("acc_2", 1, "USD")); got.SingleMax != 7_000 {
		t.Errorf("override after restart: single %d, want 7000", got.SingleMax)
	}
}

// TestLimitsRefuseNewerVersion: a policy or override from a later build
// fails Load, and such a trust state fails the entity's limits (the
// decision degrades), instead of reading as the default or as no history.
func TestLimitsRefuseNewerVersion(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"lp/policy", `{"v":2,"name":"future","version":9}`},
		{"lo/account:acc_1", `{"v":2,"entity":"account:acc_1","daily_max":5,"expires_at":"2099-01-01T00:00:00Z"}`},
		{"lo/account:acc_1", `{"entity":`},
	} {
		t.Run(c.value, func(t *testing.T) {
			f := openLimiter(t, t.TempDir(), newLimClock(), nil)
			writeRaw(t, f.store.KV(), map[string]string{c.key: c.value})
			if err := f.lim.Load(context.Background()); err == nil {
				t.Fatalf("Load with %s = %s succeeded, want an error", c.key, c.value)
			}
		})
	}
	for _, value := range []string{`{"v":2,"trust":3,"learned":true}`, `{"trust":`} {
		t.Run(value, func(t *testing.T) {
			f := openLimiter(t, t.TempDir(), newLimClock(), nil)
			writeRaw(t, f.store.KV(), map[string]string{"lt/account:acc_1": value})
			if err := f.lim.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			p := f.payment("acc_1", 1, "USD")
			_, err := f.lim.Limits(context.Background(), &p)
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Errorf("Limits with trust state %s: err = %v, want engine.ErrCorrupt", value, err)
			}
		})
	}
}

func writeRaw(tb testing.TB, db kv.DB, values map[string]string) {
	tb.Helper()
	err := db.Update(context.Background(), func(tx kv.Tx) error {
		for k, v := range values {
			if err := tx.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func readRawPrefix(tb testing.TB, db kv.DB, prefix string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefix), kv.ScanOptions{}, func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
