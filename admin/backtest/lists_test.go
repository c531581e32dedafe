package backtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// TestReplayCIDRMatchesLive is the regression test of a replay that parsed
// cidr items with its own code, without the IPv4-mapped IPv6 handling of
// the live lists: ::ffff:10.0.0.0/104 denied 10.1.2.3 live and allowed it
// in a replay. Each item and address must answer the same in both.
func TestReplayCIDRMatchesLive(t *testing.T) {
	tests := []struct {
		item, ip string
		want     bool
	}{
		{"::ffff:10.0.0.0/104", "10.1.2.3", true},
		{"::ffff:10.0.0.0/104", "11.1.2.3", false},
		{"::ffff:10.1.2.3", "10.1.2.3", true},
		{"::ffff:10.1.2.3/128", "10.1.2.3", true},
		{"10.0.0.0/8", "::ffff:10.9.9.9", true},
		{"2001:db8::/32", "2001:db8::1", true},
		{"198.51.100.7", "198.51.100.8", false},
	}
	store := features.New(features.Options{Dir: t.TempDir()})
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	live := features.NewLists(store.KV(), nil)
	if err := live.Load(); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.item+" "+tt.ip, func(t *testing.T) {
			name := fmt.Sprintf("ips_%d", i)
			if _, err := live.Put(features.List{Name: name, Kind: features.KindCIDR}); err != nil {
				t.Fatal(err)
			}
			if _, err := live.AddItems(name, []features.Item{{Value: tt.item}}); err != nil {
				t.Fatal(err)
			}
			if got := live.Contains(name, tt.ip); got != tt.want {
				t.Fatalf("live: %s in [%s] = %v, want %v", tt.ip, tt.item, got, tt.want)
			}
			cfg := backtest.ReplayConfig{Rules: rules.File{
				Spec:  rules.Spec{Rules: []rules.Rule{{ID: "ip", Expression: fmt.Sprintf("in_list(%q, device.ip)", name), Action: engine.ActionDeny}}},
				Lists: []rules.ListSeed{{Name: name, Kind: "cidr", Items: []string{tt.item}}},
			}}
			events := fmt.Sprintf(`{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","device":{"ip":%q}}`+"\n", tt.ip)
			lines, _ := replayLines(t, cfg, events)
			if got := lines[0].Decision == "deny"; got != tt.want {
				t.Errorf("replay: %s in [%s] = %v, want %v (as live)", tt.ip, tt.item, got, tt.want)
			}
		})
	}
}
