package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// keyStack is the key store on a real Badger (a features.Store) behind the
// real server.
type keyStack struct {
	tb    testing.TB
	dir   string
	store *features.Store
	audit *admin.Audit
	keys  *admin.Keys
	http  *httptest.Server
	admin string // an admin key
}

var startup = engine.WithPrincipal(context.Background(), engine.Principal{Name: "startup"})

func newKeyStack(tb testing.TB, dir string) *keyStack {
	tb.Helper()
	store := features.New(features.Options{Dir: dir})
	if err := store.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	s := &keyStack{tb: tb, dir: dir, store: store, audit: admin.NewAudit(store.KV(), nil)}
	s.keys = admin.NewKeys(store.KV(), s.audit, nil)
	if err := s.keys.Load(); err != nil {
		tb.Fatal(err)
	}
	srv := server.New(server.Config{Auth: s.keys})
	s.keys.Register(srv.Group("/admin"), srv.Require)
	s.http = httptest.NewServer(openapitest.Handler(tb, srv.Handler()))
	tb.Cleanup(s.close)
	return s
}

func (s *keyStack) close() {
	if s.http == nil {
		return
	}
	s.http.Close()
	s.http = nil
	if err := s.store.Close(context.Background()); err != nil {
		s.tb.Errorf("close store: %v", err)
	}
}

// call sends a request with key as the bearer key ("" sends none) and
// decodes a JSON answer into out when out is not nil.
func (s *keyStack) call(key, method, path string, body any, out any) (int, http.Header, []byte) {
	s.tb.Helper()
	var r io.Reader
	if body != nil {
		b, ok := body.(string)
		if !ok {
			data, err := json.Marshal(body)
			if err != nil {
				s.tb.Fatal(err)
			}
			b = string(data)
		}
		r = strings.NewReader(b)
	}
	req, err := http.NewRequest(method, s.http.URL+path, r)
	if err != nil {
		s.tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.tb.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.tb.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, resp.Header, data
}

type keyOut struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Hint      string `json:"hint"`
	Key       string `json:"key"`
	CreatedBy string `json:"created_by"`
	RevokedAt string `json:"revoked_at"`
	RevokedBy string `json:"revoked_by"`
	Code      string `json:"code"`
	Field     string `json:"field"`
}

// bootstrap creates the first admin key directly, as main does.
func (s *keyStack) bootstrap() string {
	s.tb.Helper()
	_, secret, err := s.keys.Create(startup, "root", engine.RoleAdmin)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.admin = secret
	return secret
}

func (s *keyStack) create(name string, role engine.Role) keyOut {
	s.tb.Helper()
	var k keyOut
	if code, _, body := s.call(s.admin, "POST", "/admin/keys", map[string]string{"name": name, "role": string(role)}, &k); code != http.StatusCreated {
		s.tb.Fatalf("create key %s: %d %s", name, code, body)
	}
	return k
}

func TestKeyLifecycle(t *testing.T) {
	s := newKeyStack(t, t.TempDir())
	root := s.bootstrap()

	created := map[engine.Role]keyOut{}
	for _, role := range []engine.Role{engine.RoleGateway, engine.RoleAnalyst, engine.RoleAuditor, engine.RoleMetrics, engine.RoleAdmin} {
		var k keyOut
		code, h, body := s.call(root, "POST", "/admin/keys", map[string]string{"name": "k-" + string(role), "role": string(role)}, &k)
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", role, code, body)
		}
		if got := h.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store: the answer holds a secret", got)
		}
		// rk_ and 256 random bits in base32: 3 + 52 characters.
		if !strings.HasPrefix(k.Key, admin.KeyPrefix) || len(k.Key) != 55 || k.Hint != k.Key[:7] {
			t.Errorf("key %q (hint %q): want rk_ and 52 base32 characters", k.Key, k.Hint)
		}
		if k.Role != string(role) || k.CreatedBy != "root" || !strings.HasPrefix(k.ID, "key_") {
			t.Errorf("created %+v", k)
		}
		for _, other := range created {
			if other.Key == k.Key || other.ID == k.ID {
				t.Errorf("two keys share a secret or an id: %+v %+v", other, k)
			}
		}
		created[role] = k
	}

	gw := created[engine.RoleGateway]
	tests := []struct {
		name   string
		key    string
		method string
		path   string
		want   int
	}{
		{"no key", "", "GET", "/admin/keys", http.StatusUnauthorized},
		{"unknown key", admin.GenerateKey(), "GET", "/admin/keys", http.StatusUnauthorized},
		{"key with a changed character", gw.Key[:len(gw.Key)-1] + "x", "GET", "/admin/keys", http.StatusUnauthorized},
		{"gateway may not list keys", gw.Key, "GET", "/admin/keys", http.StatusForbidden},
		{"analyst may not create keys", created[engine.RoleAnalyst].Key, "POST", "/admin/keys", http.StatusForbidden},
		{"auditor may not revoke keys", created[engine.RoleAuditor].Key, "DELETE", "/admin/keys/" + gw.ID, http.StatusForbidden},
		{"metrics may not list keys", created[engine.RoleMetrics].Key, "GET", "/admin/keys", http.StatusForbidden},
		{"second admin lists keys", created[engine.RoleAdmin].Key, "GET", "/admin/keys", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, body := s.call(tt.key, tt.method, tt.path, nil, nil); code != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}

	// The list names every key but never holds a key or its hash.
	code, _, list := s.call(root, "GET", "/admin/keys", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, list)
	}
	for _, k := range created {
		if !bytes.Contains(list, []byte(k.ID)) {
			t.Errorf("list lacks %s", k.ID)
		}
		if bytes.Contains(list, []byte(k.Key)) {
			t.Errorf("list holds the key of %s", k.Name)
		}
	}
	if bytes.Contains(list, []byte("sha256")) || bytes.Contains(list, []byte(`"key"`)) {
		t.Errorf("list holds secrets: %s", list)
	}

	// Revocation takes effect on the next request.
	if _, err := s.keys.Authenticate(context.Background(), gw.Key); err != nil {
		t.Fatalf("gateway key before revocation: %v", err)
	}
	var revoked keyOut
	if code, _, body := s.call(root, "DELETE", "/admin/keys/"+gw.ID, nil, &revoked); code != http.StatusOK || revoked.RevokedAt == "" || revoked.RevokedBy != "root" {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if _, err := s.keys.Authenticate(context.Background(), gw.Key); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if code, _, _ := s.call(gw.Key, "GET", "/admin/keys", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked key = %d, want 401", code)
	}
	if code, _, _ := s.call(root, "DELETE", "/admin/keys/"+gw.ID, nil, nil); code != http.StatusOK {
		t.Errorf("revoking again = %d, want 200", code)
	}
	if code, _, _ := s.call(root, "DELETE", "/admin/keys/key_0000000000000000", nil, nil); code != http.StatusNotFound {
		t.Errorf("revoking an unknown key = %d, want 404", code)
	}

	// The audit trail has every change, by the key's name, without secrets.
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "key"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		got = append(got, e.Action+" "+e.Actor)
		data, _ := json.Marshal(e)
		for _, k := range created {
			if bytes.Contains(data, []byte(k.Key)) {
				t.Errorf("audit entry %d holds a key: %s", e.ID, data)
			}
		}
	}
	want := "key.create startup,key.create root,key.create root,key.create root,key.create root,key.create root,key.revoke root"
	if strings.Join(got, ",") != want {
		t.Errorf("audit =\n  %s\nwant\n  %s", strings.Join(got, ","), want)
	}
}

func TestLastAdminKeyCannotBeRevoked(t *testing.T) {
	s := newKeyStack(t, t.TempDir())
	root := s.bootstrap()
	k, err := s.keys.Authenticate(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	var e keyOut
	if code, _, _ := s.call(root, "DELETE", "/admin/keys/"+k.KeyID, nil, &e); code != http.StatusConflict {
		t.Fatalf("revoking the last admin key = %d, want 409", code)
	}
	second := s.create("second", engine.RoleAdmin)
	if code, _, body := s.call(second.Key, "DELETE", "/admin/keys/"+k.KeyID, nil, nil); code != http.StatusOK {
		t.Fatalf("revoking one of two admin keys = %d %s", code, body)
	}
	if code, _, _ := s.call(root, "GET", "/admin/keys", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked admin key = %d, want 401", code)
	}
}

func TestCreateKeyValidation(t *testing.T) {
	s := newKeyStack(t, t.TempDir())
	s.bootstrap()
	s.create("taken", engine.RoleGateway)
	tests := []struct {
		name      string
		body      any
		wantCode  int
		wantError string
		wantField string
	}{
		{"no name", map[string]string{"role": "gateway"}, 400, "required", "name"},
		{"long name", map[string]string{"name": strings.Repeat("n", 65), "role": "gateway"}, 400, "too_long", "name"},
		{"control character", map[string]string{"name": "a\nb", "role": "gateway"}, 400, "invalid_name", "name"},
		{"card number as name", map[string]string{"name": "4111 1111 1111 1111", "role": "gateway"}, 400, "card_number_refused", "name"},
		{"no role", map[string]string{"name": "x"}, 400, "required", "role"},
		{"unknown role", map[string]string{"name": "x", "role": "root"}, 400, "invalid_role", "role"},
		{"unknown field", map[string]any{"name": "x", "role": "gateway", "expires": 1}, 400, "unknown_field", "expires"},
		{"not JSON", "{", 400, "invalid_json", ""},
		{"name of an active key", map[string]string{"name": "taken", "role": "analyst"}, 409, "conflict", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e keyOut
			code, _, body := s.call(s.admin, "POST", "/admin/keys", tt.body, &e)
			if code != tt.wantCode || e.Code != tt.wantError || e.Field != tt.wantField {
				t.Errorf("got %d %s, want %d %s on %q", code, body, tt.wantCode, tt.wantError, tt.wantField)
			}
		})
	}
}

// TestKeysSurviveRestart reopens the database: active keys still work,
// revoked ones still do not, and no key is stored in the clear.
func TestKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := newKeyStack(t, dir)
	root := s.bootstrap()
	keep := s.create("keep", engine.RoleGateway)
	drop := s.create("drop", engine.RoleAnalyst)
	if code, _, _ := s.call(root, "DELETE", "/admin/keys/"+drop.ID, nil, nil); code != http.StatusOK {
		t.Fatal("revoke failed")
	}
	s.close()

	s = newKeyStack(t, dir)
	if p, err := s.keys.Authenticate(context.Background(), keep.Key); err != nil || p.Name != "keep" || p.Role != engine.RoleGateway || p.KeyID != keep.ID {
		t.Errorf("kept key after restart = %+v, %v", p, err)
	}
	if _, err := s.keys.Authenticate(context.Background(), drop.Key); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("revoked key after restart: %v", err)
	}
	// Every key of the database, not only the keys' and the audit trail's.
	err := s.store.KV().View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan(nil, kv.ScanOptions{}, func(k, v []byte) error {
			for _, secret := range []string{root, keep.Key, drop.Key} {
				if bytes.Contains(v, []byte(secret)) || bytes.Contains(k, []byte(secret)) {
					t.Errorf("a key is stored in the clear under %q", k)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEnsureKey(t *testing.T) {
	s := newKeyStack(t, t.TempDir())
	const secret = "operator-chosen-admin-key-0123456789abcdef"
	if _, _, err := s.keys.Ensure(startup, "too-short", "bootstrap", engine.RoleAdmin); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("short key: %v, want ErrInvalid", err)
	}
	k, created, err := s.keys.Ensure(startup, secret, "bootstrap", engine.RoleAdmin)
	if err != nil || !created || k.Name != "bootstrap" {
		t.Fatalf("first ensure = %+v, %v, %v", k, created, err)
	}
	if _, created, err := s.keys.Ensure(startup, secret, "bootstrap", engine.RoleAdmin); err != nil || created {
		t.Fatalf("second ensure created %v, %v", created, err)
	}
	s.admin = secret
	other := s.create("other-admin", engine.RoleAdmin)
	// Another operator key while "bootstrap" is taken gets a suffixed name.
	k2, created, err := s.keys.Ensure(startup, secret+"-2", "bootstrap", engine.RoleAdmin)
	if err != nil || !created || !strings.HasPrefix(k2.Name, "bootstrap-") {
		t.Fatalf("ensure of a second key = %+v, %v, %v", k2, created, err)
	}
	// A revoked key stays revoked, whatever the environment says.
	if _, err := s.keys.Revoke(startup, k.ID); err != nil {
		t.Fatal(err)
	}
	k, created, err = s.keys.Ensure(startup, secret, "bootstrap", engine.RoleAdmin)
	if err != nil || created || k.Active() {
		t.Fatalf("ensure of a revoked key = %+v, %v, %v", k, created, err)
	}
	if _, err := s.keys.Authenticate(context.Background(), secret); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("revoked bootstrap key authenticates: %v", err)
	}
	if code, _, _ := s.call(other.Key, "GET", "/admin/keys", nil, nil); code != http.StatusOK {
		t.Errorf("other admin = %d", code)
	}
}

// BenchmarkAuthenticate is the hot path of every request: one SHA-256, one
// map lookup, one constant-time compare, among 1,000 keys.
func BenchmarkAuthenticate(b *testing.B) {
	s := newKeyStack(b, b.TempDir())
	var secret string
	for i := range 1000 {
		_, sec, err := s.keys.Create(startup, fmt.Sprintf("k%d", i), engine.RoleGateway)
		if err != nil {
			b.Fatal(err)
		}
		secret = sec
	}
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.keys.Authenticate(ctx, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if p, err := s.keys.Authenticate(ctx, secret); err != nil || p.Name != "k999" {
		b.Fatalf("authenticate = %+v, %v", p, err)
	}
}
