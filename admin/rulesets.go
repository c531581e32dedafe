// Package admin is the analysts' API: rules and their versions, lists,
// feature definitions and the audit trail. It stores what it owns in the
// same Badger database as the decisions.
package admin

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"

	"github.com/riskengine/risk/features/keyspace"
)

// Version is one published, immutable rule set version.
type Version struct {
	Number    int64      `json:"version"`
	Author    string     `json:"author"`
	CreatedAt time.Time  `json:"created_at"`
	Comment   string     `json:"comment,omitempty"`
	Hash      string     `json:"hash"`
	Spec      rules.Spec `json:"spec"`
}

const prefixVersion = keyspace.RuleSetVersion

// Versions keeps the published rule set versions. Publishing is serialised;
// reads are safe for concurrent use.
type Versions struct {
	db  *badger.DB
	now func() time.Time
	mu  sync.Mutex
}

// NewVersions returns the versions kept in db.
func NewVersions(db *badger.DB, now func() time.Time) *Versions {
	if now == nil {
		now = time.Now
	}
	return &Versions{db: db, now: now}
}

func versionKey(n int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixVersion), uint64(n))
}

// Latest returns the newest version, or an error wrapping engine.ErrNotFound
// when none was ever published.
func (v *Versions) Latest() (Version, error) {
	var out Version
	err := v.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixVersion), PrefetchValues: true})
		defer it.Close()
		it.Seek(versionKey(math.MaxInt64))
		if !it.Valid() {
			return badger.ErrKeyNotFound
		}
		return it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &out) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Version{}, fmt.Errorf("no published rule set: %w", engine.ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read latest rule set: %w", err)
	}
	return out, nil
}

// latestNumber returns the newest version's number, 0 when none, reading
// only keys: a version of a large rule set is slow to decode.
func (v *Versions) latestNumber() (int64, error) {
	var n int64
	err := v.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixVersion)})
		defer it.Close()
		it.Seek(versionKey(math.MaxInt64))
		if it.Valid() {
			n = int64(binary.BigEndian.Uint64(it.Item().Key()[len(prefixVersion):]))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read latest rule set: %w", err)
	}
	return n, nil
}

// Get returns version n.
func (v *Versions) Get(n int64) (Version, error) {
	var out Version
	err := v.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(versionKey(n))
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error { return json.Unmarshal(b, &out) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Version{}, fmt.Errorf("rule set version %d: %w", n, engine.ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read rule set version %d: %w", n, err)
	}
	return out, nil
}

// List returns every version, newest first, without their specs.
func (v *Versions) List() ([]Version, error) {
	var out []Version
	err := v.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixVersion), PrefetchValues: true})
		defer it.Close()
		for it.Seek(versionKey(math.MaxInt64)); it.Valid(); it.Next() {
			var ver Version
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &ver) }); err != nil {
				return err
			}
			ver.Spec = rules.Spec{}
			out = append(out, ver)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rule set versions: %w", err)
	}
	return out, nil
}

// Publish compiles spec against env and, when it compiles, stores it as the
// next version and calls live with the compiled set before returning, all
// under one lock so versions go live in number order. Nothing is stored
// when compilation fails.
func (v *Versions) Publish(spec rules.Spec, env rules.Env, author, comment string, live func(*rules.Set)) (Version, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	last, err := v.latestNumber()
	if err != nil {
		return Version{}, err
	}
	next := last + 1
	set, err := rules.Compile(spec, env, next)
	if err != nil {
		return Version{}, err
	}
	spec = set.Spec()
	ver := Version{Number: next, Author: author, CreatedAt: v.now().UTC(), Comment: comment, Hash: spec.Hash(), Spec: spec}
	data, err := json.Marshal(ver)
	if err != nil {
		return Version{}, fmt.Errorf("encode rule set version: %w", err)
	}
	if err := v.db.Update(func(txn *badger.Txn) error { return txn.Set(versionKey(next), data) }); err != nil {
		return Version{}, fmt.Errorf("store rule set version: %w", err)
	}
	if live != nil {
		live(set)
	}
	return ver, nil
}

// VersionInfo describes a published version without its rules.
type VersionInfo struct {
	Number             int64     `json:"version"`
	Author             string    `json:"author"`
	CreatedAt          time.Time `json:"created_at"`
	Comment            string    `json:"comment,omitempty"`
	Hash               string    `json:"hash"`
	ChallengeThreshold int       `json:"challenge_threshold"`
	DenyThreshold      int       `json:"deny_threshold"`
	Rules              int       `json:"rules"`
}

// Info describes ver without its rules.
func (ver Version) Info() VersionInfo {
	return VersionInfo{
		Number: ver.Number, Author: ver.Author, CreatedAt: ver.CreatedAt, Comment: ver.Comment, Hash: ver.Hash,
		ChallengeThreshold: ver.Spec.ChallengeThreshold, DenyThreshold: ver.Spec.DenyThreshold, Rules: len(ver.Spec.Rules),
	}
}

// Page returns up to limit versions numbered below before, newest first,
// without decoding their rules. before <= 0 starts at the newest.
func (v *Versions) Page(before int64, limit int) ([]VersionInfo, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	out := []VersionInfo{}
	err := v.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixVersion), PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		for it.Seek(versionKey(before - 1)); it.Valid() && len(out) < limit; it.Next() {
			var head struct {
				VersionInfo
				Spec struct {
					ChallengeThreshold int        `json:"challenge_threshold"`
					DenyThreshold      int        `json:"deny_threshold"`
					Rules              []struct{} `json:"rules"`
				} `json:"spec"`
			}
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &head) }); err != nil {
				return err
			}
			info := head.VersionInfo
			info.ChallengeThreshold, info.DenyThreshold = head.Spec.ChallengeThreshold, head.Spec.DenyThreshold
			info.Rules = len(head.Spec.Rules)
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rule set versions: %w", err)
	}
	return out, nil
}
