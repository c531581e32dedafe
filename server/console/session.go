package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
)

// Session defaults.
const (
	// DefaultIdleTimeout ends a session nobody used for this long.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxAge ends a session this long after sign-in, used or not.
	DefaultMaxAge = 12 * time.Hour
	// maxSessions bounds the memory sessions take; signing in beyond it
	// first drops expired sessions, then the least recently used one.
	maxSessions = 10000
	cookieName  = "risk_console"
)

// session is one signed-in browser. The API key stays on the server: the
// browser holds only the random session id, and the console calls the API
// in-process with the key, so the API's roles apply unchanged and a revoked
// key ends the session at its next request.
type session struct {
	key       string
	principal engine.Principal
	csrf      string
	created   time.Time
	lastSeen  time.Time
}

// sessions is the session table, keyed by the SHA-256 of the session id
// (the cookie value is never kept). Without a SessionStore it is this
// process's memory; with one, every session is read from the store on
// each request (see shared_session.go), so any node serves it and signing
// out ends it everywhere. Safe for concurrent use.
type sessions struct {
	mu      sync.Mutex
	byHash  map[[32]byte]*session
	store   SessionStore
	now     func() time.Time
	idle    time.Duration
	maxAge  time.Duration
	maxSize int
}

func newSessions(store SessionStore, now func() time.Time, idle, maxAge time.Duration) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, store: store, now: now, idle: idle, maxAge: maxAge, maxSize: maxSessions}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its id (the cookie value).
func (s *sessions) create(ctx context.Context, key string, p engine.Principal) (string, *session, error) {
	id := randomToken()
	now := s.now()
	sess := &session{key: key, principal: p, csrf: randomToken(), created: now, lastSeen: now}
	if s.store != nil {
		if err := s.put(ctx, id, sess); err != nil {
			return "", nil, err
		}
		return id, sess, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byHash) >= s.maxSize {
		s.sweepLocked(now)
	}
	if len(s.byHash) >= s.maxSize {
		var oldest [32]byte
		var at time.Time
		for h, x := range s.byHash {
			if at.IsZero() || x.lastSeen.Before(at) {
				oldest, at = h, x.lastSeen
			}
		}
		delete(s.byHash, oldest)
	}
	s.byHash[sha256.Sum256([]byte(id))] = sess
	return id, sess, nil
}

// get returns the live session of id and marks it used; an expired one is
// removed and not returned. An error is a failed read of the store.
func (s *sessions) get(ctx context.Context, id string) (*session, bool, error) {
	if id == "" {
		return nil, false, nil
	}
	if s.store != nil {
		return s.getStored(ctx, id)
	}
	sess, ok := s.getMemory(id)
	return sess, ok, nil
}

func (s *sessions) getMemory(id string) (*session, bool) {
	h := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[h]
	if !ok {
		return nil, false
	}
	if s.expired(sess, now) {
		delete(s.byHash, h)
		return nil, false
	}
	sess.lastSeen = now
	return sess, true
}

// end removes the session of id.
func (s *sessions) end(ctx context.Context, id string) error {
	if s.store != nil {
		return s.store.DeleteSession(ctx, handle(id))
	}
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.byHash, h)
	s.mu.Unlock()
	return nil
}

func (s *sessions) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= s.idle || now.Sub(sess.created) >= s.maxAge
}

func (s *sessions) sweepLocked(now time.Time) {
	for h, x := range s.byHash {
		if s.expired(x, now) {
			delete(s.byHash, h)
		}
	}
}

// checkCSRF reports whether token is the session's CSRF token.
func (sess *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}
