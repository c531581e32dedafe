package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

func TestDevModeOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"127.0.0.2:0", true},
		{":8080", false}, // every interface
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.1.2.3:8080", false},
		{"risk.internal:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			_, err := parseConfig([]string{"--dev", "--addr", tt.addr}, io.Discard)
			if (err == nil) != tt.ok {
				t.Errorf("--dev --addr %s: err = %v, want ok %v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestFallbackMerchantFlag(t *testing.T) {
	c, err := parseConfig([]string{"--fallback-merchant", "m_1=deny, m_2 = allow"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.FallbackByMerchant) != 2 || c.FallbackByMerchant["m_1"] != engine.Deny || c.FallbackByMerchant["m_2"] != engine.Allow {
		t.Errorf("FallbackByMerchant = %v", c.FallbackByMerchant)
	}
	for _, bad := range []string{"m_1", "m_1=block", "=deny", "m_1=deny,"} {
		if _, err := parseConfig([]string{"--fallback-merchant", bad}, io.Discard); err == nil {
			t.Errorf("--fallback-merchant %q accepted", bad)
		}
	}
}

// TestBootstrapKeys: without RISK_ADMIN_KEY a first start generates an
// admin key and prints it once; later starts print nothing.
func TestBootstrapKeys(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys := admin.NewKeys(db, admin.NewAudit(db, nil), nil)
	if err := keys.Load(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var stderr bytes.Buffer
	if err := bootstrapKeys(context.Background(), keys, "", &stderr, log); err != nil {
		t.Fatal(err)
	}
	printed := regexp.MustCompile(`rk_[a-z2-7]{52}`).FindAllString(stderr.String(), -1)
	if len(printed) != 1 {
		t.Fatalf("printed %q", stderr.String())
	}
	if p, err := keys.Authenticate(context.Background(), printed[0]); err != nil || p.Role != engine.RoleAdmin || p.Name != "bootstrap" {
		t.Errorf("printed key = %+v, %v", p, err)
	}
	stderr.Reset()
	const mine = "rk_operator_chosen_key_000000000000000000000"
	if err := bootstrapKeys(context.Background(), keys, mine, &stderr, log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "rk_") {
		t.Errorf("second start printed a key: %q", stderr.String())
	}
	if p, err := keys.Authenticate(context.Background(), mine); err != nil || p.Role != engine.RoleAdmin {
		t.Errorf("RISK_ADMIN_KEY = %+v, %v", p, err)
	}
	if err := bootstrapKeys(context.Background(), keys, "short", &stderr, log); err == nil {
		t.Error("a short RISK_ADMIN_KEY was accepted")
	}
}
