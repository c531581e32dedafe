package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// adminPrefixes are the stored values of package admin this test covers.
var adminPrefixes = []string{"rv/", "ak/", "au/"}

// TestAdminStoredFormats: rule set versions, API keys and audit entries are
// written as their stored type's JSON with "v":1 first; the same values
// without it, as releases before it wrote them, read back the same; a
// later version is refused, not guessed.
func TestAdminStoredFormats(t *testing.T) {
	ctx := engine.WithPrincipal(context.Background(), engine.Principal{Name: "ann"})
	store := features.New(features.Options{Dir: t.TempDir()})
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	db := store.KV()

	audit := admin.NewAudit(db, nil)
	keys := admin.NewKeys(db, audit, nil)
	if err := keys.Load(); err != nil {
		t.Fatal(err)
	}
	key, secret, err := keys.Create(ctx, "gw", engine.RoleGateway)
	if err != nil {
		t.Fatal(err)
	}
	versions := admin.NewVersions(db, nil)
	spec := rules.Spec{ChallengeThreshold: 40, DenyThreshold: 80, Rules: []rules.Rule{{ID: "big", Expression: "amount > 100", Action: engine.ActionDeny}}}
	if _, err := versions.Publish(spec, rules.Env{}, "ann", "first", nil); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		if err := keys.Load(); err != nil {
			t.Fatalf("load keys: %v", err)
		}
		p, err := keys.Authenticate(ctx, secret)
		if err != nil || p.KeyID != key.ID {
			t.Fatalf("the key does not authenticate: %+v, %v", p, err)
		}
		ver, err := versions.Get(1)
		if err != nil {
			t.Fatalf("get version: %v", err)
		}
		page, err := versions.Page(0, 10)
		if err != nil {
			t.Fatalf("page versions: %v", err)
		}
		entries, _, err := audit.Query(ctx, admin.AuditQuery{Limit: 10})
		if err != nil {
			t.Fatalf("query audit: %v", err)
		}
		b, _ := json.Marshal([]any{ver, page, entries})
		return string(b)
	}
	before := read()

	raw := scanRaw(t, db, adminPrefixes)
	if len(raw) < 3 {
		t.Fatalf("stored %d values under %v, want a version, a key and an audit entry", len(raw), adminPrefixes)
	}
	old := map[string][]byte{}
	for k, v := range raw {
		if !bytes.HasPrefix(v, []byte(`{"v":1,`)) {
			t.Errorf("stored %q = %s, want JSON with \"v\":1 first", k, v)
			continue
		}
		old[k] = append([]byte("{"), v[len(`{"v":1,`):]...) // as the releases before the member wrote it
	}
	writeRawBytes(t, db, old)
	if after := read(); after != before {
		t.Errorf("read back from pre-format values:\n%s\nwant\n%s", after, before)
	}

	for k, v := range raw {
		newer := append([]byte(`{"v":2,`), v[len(`{"v":1,`):]...)
		writeRawBytes(t, db, map[string][]byte{k: newer})
		var err error
		switch k[:3] {
		case "rv/":
			_, err = versions.Get(1)
		case "ak/":
			err = keys.Load()
		case "au/":
			_, _, err = audit.Query(ctx, admin.AuditQuery{Limit: 10})
		}
		if !errors.Is(err, engine.ErrCorrupt) {
			t.Errorf("reading %q of version 2: err = %v, want ErrCorrupt", k, err)
		}
		writeRawBytes(t, db, map[string][]byte{k: v})
	}
}

func scanRaw(tb testing.TB, db kv.DB, prefixes []string) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	err := db.View(context.Background(), func(tx kv.Tx) error {
		for _, p := range prefixes {
			err := tx.Scan([]byte(p), kv.ScanOptions{}, func(k, v []byte) error {
				out[string(k)] = append([]byte(nil), v...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func writeRawBytes(tb testing.TB, db kv.DB, values map[string][]byte) {
	tb.Helper()
	err := db.Update(context.Background(), func(tx kv.Tx) error {
		for k, v := range values {
			if err := tx.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
