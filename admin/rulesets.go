// Package admin is the analysts' API: rules and their versions, lists,
// feature definitions and the audit trail. It stores what it owns through
// a kv.DB: on a single node the same Badger database as the decisions.
package admin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"

	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
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

// storedRuleVersion is the stored form of a Version (after the format
// byte, stored.go). It has exactly Version's fields, so a field added to
// the API's Version fails to compile in the conversions until it is
// decided whether it is stored. The spec is the analysts' rule set
// document (rules.Spec), which has a contract of its own: rule files.
type storedRuleVersion struct {
	Number    int64      `json:"version"`
	Author    string     `json:"author"`
	CreatedAt time.Time  `json:"created_at"`
	Comment   string     `json:"comment,omitempty"`
	Hash      string     `json:"hash"`
	Spec      rules.Spec `json:"spec"`
}

func decodeVersion(b []byte) (Version, error) {
	var s storedRuleVersion
	if err := decodeStored(b, &s); err != nil {
		return Version{}, fmt.Errorf("decode rule set version: %w", err)
	}
	return Version(s), nil
}

// Versions keeps the published rule set versions. Publishing is serialised;
// reads are safe for concurrent use.
//
// Its methods take no context (callers outside this package use them as
// they are); each runs its transaction under context.Background().
type Versions struct {
	db  kv.DB
	now func() time.Time
	mu  sync.Mutex
}

// NewVersions returns the versions kept in db.
func NewVersions(db kv.DB, now func() time.Time) *Versions {
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
	found := false
	err := v.db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixVersion), kv.ScanOptions{Reverse: true, From: versionKey(math.MaxInt64)}, func(_, b []byte) error {
			found = true
			var err error
			if out, err = decodeVersion(b); err != nil {
				return err
			}
			return kv.Stop
		})
	})
	if err != nil {
		return Version{}, fmt.Errorf("read latest rule set: %w", err)
	}
	if !found {
		return Version{}, fmt.Errorf("no published rule set: %w", engine.ErrNotFound)
	}
	return out, nil
}

// latestNumber returns the newest version's number, 0 when none, reading
// only keys: a version of a large rule set is slow to decode.
func (v *Versions) latestNumber(ctx context.Context) (int64, error) {
	var n int64
	err := v.db.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixVersion), kv.ScanOptions{Reverse: true, From: versionKey(math.MaxInt64), KeysOnly: true}, func(k, _ []byte) error {
			n = int64(binary.BigEndian.Uint64(k[len(prefixVersion):]))
			return kv.Stop
		})
	})
	if err != nil {
		return 0, fmt.Errorf("read latest rule set: %w", err)
	}
	return n, nil
}

// Get returns version n.
func (v *Versions) Get(n int64) (Version, error) {
	var out Version
	err := v.db.View(context.Background(), func(tx kv.Tx) error {
		b, err := tx.Get(versionKey(n))
		if err != nil {
			return err
		}
		out, err = decodeVersion(b)
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
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
	err := v.db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixVersion), kv.ScanOptions{Reverse: true, From: versionKey(math.MaxInt64)}, func(_, b []byte) error {
			ver, err := decodeVersion(b)
			if err != nil {
				return err
			}
			ver.Spec = rules.Spec{}
			out = append(out, ver)
			return nil
		})
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
	return v.publish(spec, env, author, comment, live, -1)
}

// publish is Publish; with base >= 0 it publishes only over version base
// (0: none yet) and is otherwise an engine.ErrConflict.
func (v *Versions) publish(spec rules.Spec, env rules.Env, author, comment string, live func(*rules.Set), base int64) (Version, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ctx := context.Background()
	last, err := v.latestNumber(ctx)
	if err != nil {
		return Version{}, err
	}
	if base >= 0 && last != base {
		return Version{}, fmt.Errorf("version %d was published meanwhile: %w", last, engine.ErrConflict)
	}
	next := last + 1
	set, err := rules.Compile(spec, env, next)
	if err != nil {
		return Version{}, err
	}
	spec = set.Spec()
	ver := Version{Number: next, Author: author, CreatedAt: v.now().UTC(), Comment: comment, Hash: spec.Hash(), Spec: spec}
	data, err := encodeStored(storedRuleVersion(ver))
	if err != nil {
		return Version{}, fmt.Errorf("encode rule set version: %w", err)
	}
	// Another node of a cluster may publish at the same moment: the
	// version number is claimed inside the write, and the loser is told
	// to try again rather than overwriting the winner.
	err = v.db.Update(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get(versionKey(next)); !errors.Is(err, kv.ErrNotFound) {
			if err == nil {
				return fmt.Errorf("version %d was published meanwhile: %w", next, engine.ErrConflict)
			}
			return err
		}
		return tx.Set(versionKey(next), data)
	})
	if errors.Is(err, kv.ErrConflict) {
		err = fmt.Errorf("another publish ran at the same time: %w", engine.ErrConflict)
	}
	if err != nil {
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
	err := v.db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixVersion), kv.ScanOptions{Reverse: true, From: versionKey(before - 1)}, func(_, b []byte) error {
			if len(out) >= limit {
				return kv.Stop
			}
			// The stored version's fields without its rules' contents.
			var head struct {
				Number    int64     `json:"version"`
				Author    string    `json:"author"`
				CreatedAt time.Time `json:"created_at"`
				Comment   string    `json:"comment"`
				Hash      string    `json:"hash"`
				Spec      struct {
					ChallengeThreshold int        `json:"challenge_threshold"`
					DenyThreshold      int        `json:"deny_threshold"`
					Rules              []struct{} `json:"rules"`
				} `json:"spec"`
			}
			if err := decodeStored(b, &head); err != nil {
				return fmt.Errorf("decode rule set version: %w", err)
			}
			info := VersionInfo{
				Number: head.Number, Author: head.Author, CreatedAt: head.CreatedAt, Comment: head.Comment, Hash: head.Hash,
				ChallengeThreshold: head.Spec.ChallengeThreshold, DenyThreshold: head.Spec.DenyThreshold, Rules: len(head.Spec.Rules),
			}
			out = append(out, info)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list rule set versions: %w", err)
	}
	return out, nil
}
