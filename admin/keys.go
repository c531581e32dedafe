package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
)

// Bounds on API keys.
const (
	// KeyPrefix starts every generated key, so a leaked key is easy to
	// recognise (secret scanners, logs).
	KeyPrefix = "rk_"
	// MinKeyLen is the shortest key Ensure accepts from an operator: 32
	// characters of a random key carry well over 128 bits.
	MinKeyLen = 32
	// MaxKeyLen bounds a bearer token; longer ones are refused unhashed.
	MaxKeyLen = 256
	// MaxKeyNameLen bounds a key's name.
	MaxKeyNameLen  = 64
	keyRandomBytes = 32 // 256 bits
)

const prefixKey = keyspace.APIKey

// keyEncoding writes the random part of a key: lowercase base32, no
// padding, so a key is one word that survives copy and paste.
var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is an API key as stored. The key itself is never stored: only its
// SHA-256, which is enough for random keys of 256 bits (a slow password
// hash adds nothing when there is nothing to guess).
type Key struct {
	// ID is "key_" and the first 16 hex digits of the SHA-256 of the key,
	// so a key's record is found in one lookup without a key id in the key.
	ID   string
	Name string
	Role engine.Role
	// Hint is the key's first characters ("rk_ab12"), to tell keys apart.
	Hint      string
	CreatedAt time.Time
	CreatedBy string
	// RevokedAt is zero while the key is active.
	RevokedAt time.Time
	RevokedBy string

	hash [sha256.Size]byte
}

// Active reports whether k has not been revoked.
func (k *Key) Active() bool { return k.RevokedAt.IsZero() }

// storedKey is the stored form of a Key.
type storedKey struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Role      engine.Role `json:"role"`
	Hint      string      `json:"hint"`
	Hash      string      `json:"sha256"`
	CreatedAt time.Time   `json:"created_at"`
	CreatedBy string      `json:"created_by"`
	RevokedAt time.Time   `json:"revoked_at,omitzero"`
	RevokedBy string      `json:"revoked_by,omitempty"`
}

func toStoredKey(k *Key) storedKey {
	return storedKey{
		ID: k.ID, Name: k.Name, Role: k.Role, Hint: k.Hint, Hash: hex.EncodeToString(k.hash[:]),
		CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, RevokedAt: k.RevokedAt, RevokedBy: k.RevokedBy,
	}
}

func fromStoredKey(s storedKey) (Key, error) {
	k := Key{
		ID: s.ID, Name: s.Name, Role: s.Role, Hint: s.Hint,
		CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy, RevokedAt: s.RevokedAt, RevokedBy: s.RevokedBy,
	}
	h, err := hex.DecodeString(s.Hash)
	if err != nil || len(h) != sha256.Size {
		return Key{}, fmt.Errorf("key %s: bad stored hash", s.ID)
	}
	copy(k.hash[:], h)
	return k, nil
}

// Keys are the API keys: created, listed, revoked, and checked on every
// request. They are kept in a kv.DB under "ak/", with the active ones also
// in an immutable in-memory map swapped on every change, so Authenticate
// does no I/O and takes no lock. The map is current while this Keys is the
// only writer: on a single node only one process opens the Badger
// directory. Keys is safe for concurrent use; call Load before anything
// else.
type Keys struct {
	db    kv.DB
	audit *Audit
	now   func() time.Time

	mu     sync.Mutex // serialises changes
	active atomic.Pointer[map[string]*Key]
}

// NewKeys returns the keys kept in db; changes are recorded in audit,
// which is required and must be the one Audit of db that everything else
// records in (API.Audit): two Audit values on one database would hand out
// the same entry ids. now is the clock; nil means time.Now. It does no I/O.
func NewKeys(db kv.DB, audit *Audit, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	k := &Keys{db: db, audit: audit, now: now}
	k.active.Store(&map[string]*Key{})
	return k
}

// Load reads the active keys into memory. It takes no context; it reads
// under context.Background().
func (ks *Keys) Load() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	all, err := ks.list(context.Background())
	if err != nil {
		return err
	}
	m := make(map[string]*Key, len(all))
	for i := range all {
		if all[i].Active() {
			m[all[i].ID] = &all[i]
		}
	}
	ks.active.Store(&m)
	return nil
}

// Authenticate implements server.Authenticator: it returns the principal
// of an active key, or an error wrapping engine.ErrNotFound. The hash is
// compared in constant time; the map lookup before it is keyed on a prefix
// of the hash, which tells an attacker nothing about any key.
func (ks *Keys) Authenticate(_ context.Context, token string) (engine.Principal, error) {
	if len(token) == 0 || len(token) > MaxKeyLen {
		return engine.Principal{}, fmt.Errorf("api key: %w", engine.ErrNotFound)
	}
	sum := sha256.Sum256([]byte(token))
	k, ok := (*ks.active.Load())[keyID(&sum)]
	if !ok || subtle.ConstantTimeCompare(k.hash[:], sum[:]) != 1 {
		return engine.Principal{}, fmt.Errorf("api key: %w", engine.ErrNotFound)
	}
	return engine.Principal{KeyID: k.ID, Name: k.Name, Role: k.Role}, nil
}

func keyID(sum *[sha256.Size]byte) string { return "key_" + hex.EncodeToString(sum[:8]) }

// GenerateKey returns a new random key: KeyPrefix and 256 random bits in
// lowercase base32 (55 characters).
func GenerateKey() string {
	var b [keyRandomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return KeyPrefix + strings.ToLower(keyEncoding.EncodeToString(b[:]))
}

// Create makes a new active key named name with role and returns it with
// the key itself, which is shown this once and never stored. Names are
// unique among active keys, since the audit trail records changes by name;
// a taken name is an error wrapping engine.ErrConflict.
func (ks *Keys) Create(ctx context.Context, name string, role engine.Role) (Key, string, error) {
	if err := checkKey(name, role); err != nil {
		return Key{}, "", err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if taken := ks.activeNamed(name); taken != nil {
		return Key{}, "", fmt.Errorf("an active key is already named %q: %w", name, engine.ErrConflict)
	}
	for {
		secret := GenerateKey()
		k, err := ks.add(ctx, secret, name, role)
		if errors.Is(err, errKeyExists) {
			continue // a 64-bit id collision: draw again
		}
		return k, secret, err
	}
}

// Ensure makes sure secret is a key, creating it as an active key named
// name (or name plus its id, when name is taken) with role if it is new.
// It returns the key and whether it was created. A key that exists is
// left as it is, even if revoked: a revocation outlives a stale
// environment variable. It is for the bootstrap admin key an operator
// passes at start-up; secret must hold at least MinKeyLen characters.
func (ks *Keys) Ensure(ctx context.Context, secret, name string, role engine.Role) (Key, bool, error) {
	if len(secret) < MinKeyLen || len(secret) > MaxKeyLen {
		return Key{}, false, engine.Invalid("key", "invalid_key", fmt.Sprintf("a key must hold %d to %d characters; generate one with `risk keys generate`", MinKeyLen, MaxKeyLen))
	}
	if err := checkKey(name, role); err != nil {
		return Key{}, false, err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	sum := sha256.Sum256([]byte(secret))
	existing, err := ks.get(ctx, keyID(&sum))
	switch {
	case err == nil && subtle.ConstantTimeCompare(existing.hash[:], sum[:]) == 1:
		return existing, false, nil
	case err == nil:
		return Key{}, false, fmt.Errorf("key id %s is taken by another key: %w", existing.ID, engine.ErrConflict)
	case !errors.Is(err, engine.ErrNotFound):
		return Key{}, false, err
	}
	if ks.activeNamed(name) != nil {
		name = name + "-" + keyID(&sum)[4:12]
	}
	k, err := ks.add(ctx, secret, name, role)
	if err != nil {
		// Another node of a cluster, started with the same key, stored it
		// first: it exists, which is what was asked.
		if again, gerr := ks.get(ctx, keyID(&sum)); gerr == nil && subtle.ConstantTimeCompare(again.hash[:], sum[:]) == 1 {
			return again, false, nil
		}
	}
	return k, err == nil, err
}

var errKeyExists = errors.New("key id exists")

// add stores a new key and records it in the audit trail. If the audit
// entry cannot be written the key is removed again: nobody has seen it
// yet, and an unaudited key must not exist. The caller holds ks.mu.
func (ks *Keys) add(ctx context.Context, secret, name string, role engine.Role) (Key, error) {
	sum := sha256.Sum256([]byte(secret))
	k := Key{
		ID: keyID(&sum), Name: name, Role: role, Hint: secret[:min(len(secret), 7)],
		CreatedAt: ks.now().UTC(), CreatedBy: engine.Actor(ctx), hash: sum,
	}
	data, err := encodeStored(toStoredKey(&k))
	if err != nil {
		return Key{}, fmt.Errorf("encode key: %w", err)
	}
	err = ks.db.Update(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get([]byte(prefixKey + k.ID)); err == nil {
			return errKeyExists
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return tx.Set([]byte(prefixKey+k.ID), data)
	})
	if err != nil {
		if errors.Is(err, errKeyExists) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("store key: %w", err)
	}
	if _, err := ks.audit.Record(ctx, Entry{Action: "key.create", Target: "key:" + k.ID, After: keyAudit(&k)}); err != nil {
		// Removed even if the caller has gone: an unaudited key must not
		// stay behind.
		if derr := kv.Delete(context.WithoutCancel(ctx), ks.db, []byte(prefixKey+k.ID)); derr != nil {
			return Key{}, fmt.Errorf("key %s not recorded in the audit trail (%w) and not removed: %w", k.ID, err, derr)
		}
		return Key{}, fmt.Errorf("key not created: the audit trail failed: %w", err)
	}
	ks.swap(func(m map[string]*Key) { m[k.ID] = &k })
	return k, nil
}

// Revoke revokes the key id at once and returns it. Revoking a revoked key
// changes nothing. An unknown id wraps engine.ErrNotFound; revoking the last
// active admin key wraps engine.ErrConflict, since nobody could manage keys
// after it.
func (ks *Keys) Revoke(ctx context.Context, id string) (Key, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k, err := ks.get(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !k.Active() {
		return k, nil
	}
	if k.Role == engine.RoleAdmin && ks.activeAdmins() == 1 {
		return Key{}, fmt.Errorf("key %s is the last active admin key; create another admin key first: %w", id, engine.ErrConflict)
	}
	before := keyAudit(&k)
	k.RevokedAt, k.RevokedBy = ks.now().UTC(), engine.Actor(ctx)
	data, err := encodeStored(toStoredKey(&k))
	if err != nil {
		return Key{}, fmt.Errorf("encode key: %w", err)
	}
	if err := kv.Set(ctx, ks.db, []byte(prefixKey+id), data); err != nil {
		return Key{}, fmt.Errorf("store key: %w", err)
	}
	ks.swap(func(m map[string]*Key) { delete(m, id) })
	if _, err := ks.audit.Record(ctx, Entry{Action: "key.revoke", Target: "key:" + id, Before: before, After: keyAudit(&k)}); err != nil {
		return k, fmt.Errorf("key %s revoked, but not recorded in the audit trail: %w", id, err)
	}
	return k, nil
}

// List returns every key, active and revoked, oldest first.
func (ks *Keys) List(ctx context.Context) ([]Key, error) {
	return ks.list(ctx)
}

// HasActiveAdmin reports whether any admin key is active.
func (ks *Keys) HasActiveAdmin() bool { return ks.activeAdmins() > 0 }

func (ks *Keys) activeAdmins() int {
	n := 0
	for _, k := range *ks.active.Load() {
		if k.Role == engine.RoleAdmin {
			n++
		}
	}
	return n
}

func (ks *Keys) activeNamed(name string) *Key {
	for _, k := range *ks.active.Load() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// swap replaces the active map by a changed copy. The caller holds ks.mu.
func (ks *Keys) swap(change func(map[string]*Key)) {
	old := *ks.active.Load()
	m := make(map[string]*Key, len(old)+1)
	for id, k := range old {
		m[id] = k
	}
	change(m)
	ks.active.Store(&m)
}

func (ks *Keys) get(ctx context.Context, id string) (Key, error) {
	var k Key
	err := ks.db.View(ctx, func(tx kv.Tx) error {
		var s storedKey
		if err := getJSON(tx, []byte(prefixKey+id), &s); err != nil {
			return err
		}
		var err error
		k, err = fromStoredKey(s)
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return Key{}, fmt.Errorf("key %q: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("read key %s: %w", id, err)
	}
	return k, nil
}

func (ks *Keys) list(ctx context.Context) ([]Key, error) {
	var out []Key
	err := ks.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixKey), kv.ScanOptions{}, func(_, v []byte) error {
			var s storedKey
			if err := decodeStored(v, &s); err != nil {
				return err
			}
			k, err := fromStoredKey(s)
			if err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// checkKey validates a key's name and role.
func checkKey(name string, role engine.Role) error {
	switch {
	case name == "":
		return engine.Invalid("name", "required", "name is required")
	case len(name) > MaxKeyNameLen:
		return engine.Invalid("name", "too_long", fmt.Sprintf("name is longer than %d characters", MaxKeyNameLen))
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return engine.Invalid("name", "invalid_name", "name must hold printable characters only")
	case engine.LooksLikePAN(name):
		return engine.Invalid("name", "card_number_refused", "name looks like a card number")
	case role == "":
		return engine.Invalid("role", "required", "role is required: gateway, analyst, auditor, metrics or admin")
	case !engine.ValidRole(role):
		return engine.Invalid("role", "invalid_role", fmt.Sprintf("unknown role %q: use gateway, analyst, auditor, metrics or admin", role))
	}
	return nil
}

// keyAudit is what the audit trail records of a key: never its hash.
func keyAudit(k *Key) map[string]any {
	m := map[string]any{"id": k.ID, "name": k.Name, "role": k.Role, "hint": k.Hint}
	if !k.Active() {
		m["revoked_at"] = k.RevokedAt
	}
	return m
}
