package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/server/console"
)

// mapStore is a SessionStore in a map, expiring on the console's clock.
// The real stores (Badger, PostgreSQL) are used by the cluster and browser
// tests of package main.
type mapStore struct {
	mu    sync.Mutex
	now   func() time.Time
	items map[string]mapItem
}

type mapItem struct {
	v       []byte
	expires time.Time
}

func newMapStore() *mapStore { return &mapStore{items: map[string]mapItem{}} }

func (m *mapStore) GetSession(_ context.Context, h string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[h]
	if !ok || !m.now().Before(it.expires) {
		return nil, false, nil
	}
	return append([]byte(nil), it.v...), true, nil
}

func (m *mapStore) PutSession(_ context.Context, h string, v []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[h] = mapItem{v: append([]byte(nil), v...), expires: m.now().Add(ttl)}
	return nil
}

func (m *mapStore) DeleteSession(_ context.Context, h string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, h)
	return nil
}

func (m *mapStore) snapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for h, it := range m.items {
		out[h] = string(it.v)
	}
	return out
}

func withStore(m *mapStore) func(*console.Config, *clock) {
	return func(cfg *console.Config, c *clock) {
		m.now = c.Now
		cfg.Sessions = m
	}
}

// cookie returns the session cookie e's browser holds.
func (e *env) cookie() *http.Cookie {
	e.t.Helper()
	u, _ := url.Parse(e.srv.URL + "/console/")
	for _, c := range e.c.Jar.Cookies(u) {
		if c.Name == "risk_console" {
			return c
		}
	}
	e.t.Fatal("no session cookie")
	return nil
}

// TestSessionsShared: a browser signed in on one console is served by
// another on the same store, with the key it signed in with; signing out
// on either ends it on both; the store never holds the key in the clear.
func TestSessionsShared(t *testing.T) {
	store := newMapStore()
	a := newEnv(t, withStore(store))
	b := newEnv(t, withStore(store))

	a.signIn(analystKey)
	ck := a.cookie()
	bu, _ := url.Parse(b.srv.URL + "/console/")
	b.c.Jar.SetCookies(bu, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/console"}})
	if resp, body := b.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice") {
		t.Fatalf("the other console = %d, want 200 as alice", resp.StatusCode)
	}
	b.api.mu.Lock()
	bearers := append([]string(nil), b.api.bearers...)
	b.api.mu.Unlock()
	if len(bearers) == 0 || bearers[len(bearers)-1] != "Bearer "+analystKey {
		t.Errorf("the other console called the API with %q, want the signed-in key", bearers)
	}

	stored := store.snapshot()
	if len(stored) != 1 {
		t.Fatalf("store holds %d sessions, want 1", len(stored))
	}
	for h, v := range stored {
		if strings.Contains(v, analystKey) || strings.Contains(v, ck.Value) || strings.Contains(h, ck.Value) {
			t.Errorf("stored session %s = %s holds the key or the session id", h, v)
		}
	}

	csrf := b.csrf()
	if resp, _ := b.do(http.MethodPost, "/console/sign-out", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out on the other console = %d", resp.StatusCode)
	}
	if resp, _ := a.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after signing out elsewhere = %d, want 303 to sign-in", resp.StatusCode)
	}
}

// TestStoredSessionBoundToItsId: a stored session opens only for its own
// session id; records swapped between two sessions open for neither.
func TestStoredSessionBoundToItsId(t *testing.T) {
	store := newMapStore()
	a := newEnv(t, withStore(store))
	a.signIn(analystKey)
	first := a.cookie().Value
	jar, _ := cookiejar.New(nil)
	a.c.Jar = jar
	a.signIn(analystKey)
	second := a.cookie().Value
	if first == second {
		t.Fatal("two sign-ins got one session id")
	}
	h1, h2 := handleOf(first), handleOf(second)
	store.mu.Lock()
	store.items[h1], store.items[h2] = store.items[h2], store.items[h1]
	store.mu.Unlock()
	for _, id := range []string{first, second} {
		u, _ := url.Parse(a.srv.URL + "/console/")
		a.c.Jar.SetCookies(u, []*http.Cookie{{Name: "risk_console", Value: id, Path: "/console"}})
		if resp, _ := a.do(http.MethodGet, "/console/decisions", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("a session with another session's record = %d, want 303 to sign-in", resp.StatusCode)
		}
	}
}

func handleOf(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}
