package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
)

// SessionStore keeps console sessions where every node of a cluster reads
// them (the kv store: PostgreSQL in cluster mode, Badger on one node). A
// handle is the hex SHA-256 of a session id; the id itself, the cookie
// value, is never given to the store.
type SessionStore interface {
	// GetSession returns the value under handle; ok is false when there
	// is none (or it expired).
	GetSession(ctx context.Context, handle string) (value []byte, ok bool, err error)
	// PutSession stores value under handle for ttl.
	PutSession(ctx context.Context, handle string, value []byte, ttl time.Duration) error
	// DeleteSession removes handle; a missing one is not an error.
	DeleteSession(ctx context.Context, handle string) error
}

// A stored session holds the API key sealed (AES-256-GCM) with a key
// derived from the session id, which only the browser holds: the store,
// its backups and anyone reading them get no usable API key, while any
// node that receives the cookie can open it. The stored record is bound to
// its handle (the GCM additional data), so a sealed key cannot be moved to
// another session.
type storedSession struct {
	V         int         `json:"v"`
	KeyID     string      `json:"key_id"`
	Name      string      `json:"name"`
	Role      engine.Role `json:"role"`
	CSRF      string      `json:"csrf"`
	Created   time.Time   `json:"created"`
	LastSeen  time.Time   `json:"last_seen"`
	SealedKey []byte      `json:"sealed_key"`
}

// sessionVersion is the version of storedSession this code writes.
const sessionVersion = 1

// touchEvery bounds how often a session's last use is written back: idle
// timeouts are counted to within this.
const touchEvery = time.Minute

// handle is the store's name for the session id: its hex SHA-256.
func handle(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func sessionAEAD(id string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(id), nil, "risk console session key", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// put writes sess under id's handle until it reaches MaxAge.
func (s *sessions) put(ctx context.Context, id string, sess *session) error {
	aead, err := sessionAEAD(id)
	if err != nil {
		return fmt.Errorf("console session: %w", err)
	}
	h := handle(id)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(sess.key)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand never fails on supported platforms
	rec := storedSession{
		V: sessionVersion, KeyID: sess.principal.KeyID, Name: sess.principal.Name, Role: sess.principal.Role,
		CSRF: sess.csrf, Created: sess.created.UTC(), LastSeen: sess.lastSeen.UTC(),
		SealedKey: aead.Seal(nonce, nonce, []byte(sess.key), []byte(h)),
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("console session: %w", err)
	}
	ttl := sess.created.Add(s.maxAge).Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	if err := s.store.PutSession(ctx, h, value, ttl); err != nil {
		return fmt.Errorf("store console session: %w", err)
	}
	return nil
}

// getStored reads, opens and checks id's session, and writes its use back
// at most every touchEvery.
func (s *sessions) getStored(ctx context.Context, id string) (*session, bool, error) {
	h := handle(id)
	value, ok, err := s.store.GetSession(ctx, h)
	if err != nil || !ok {
		return nil, false, err
	}
	var rec storedSession
	if err := json.Unmarshal(value, &rec); err != nil || rec.V != sessionVersion {
		// Unreadable or from another build: not a session, sign in again.
		return nil, false, nil
	}
	aead, err := sessionAEAD(id)
	if err != nil {
		return nil, false, err
	}
	if len(rec.SealedKey) < aead.NonceSize() {
		return nil, false, nil
	}
	nonce, sealed := rec.SealedKey[:aead.NonceSize()], rec.SealedKey[aead.NonceSize():]
	key, err := aead.Open(nil, nonce, sealed, []byte(h))
	if err != nil {
		return nil, false, nil // not sealed for this id
	}
	sess := &session{
		key: string(key), principal: engine.Principal{KeyID: rec.KeyID, Name: rec.Name, Role: rec.Role},
		csrf: rec.CSRF, created: rec.Created, lastSeen: rec.LastSeen,
	}
	now := s.now()
	if s.expired(sess, now) {
		if err := s.store.DeleteSession(ctx, h); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if now.Sub(sess.lastSeen) >= touchEvery {
		sess.lastSeen = now
		if err := s.put(ctx, id, sess); err != nil {
			return nil, false, err
		}
	}
	return sess, true, nil
}
