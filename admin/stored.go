package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// storedVersion is the version of the values this package stores: rule
// set versions, drafts, API keys, audit entries and the canary, each the
// JSON of its stored type (storedRuleVersion, draftRule, draftMeta,
// storedKey, storedEntry, canaryState; none is a type the API serves) with
// "v" as its first member. Values written before the member existed are the
// same JSON without it and read as version 0, for good, since none of these
// expires. A later version is an error wrapping engine.ErrCorrupt, never a
// guess. A member rather than a leading format byte: the nodes of a cluster
// are upgraded one at a time, and the older ones, which ignore a member they
// do not know, keep reading what the newer ones write.
const storedVersion = 1

// versionPrefix starts every value this package writes.
const versionPrefix = `{"v":`

// encodeStored returns v's stored bytes: its JSON object with "v" first.
func encodeStored(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("stored value %T is not a JSON object", v)
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, versionPrefix...)
	out = strconv.AppendInt(out, storedVersion, 10)
	if b[1] != '}' {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}

// decodeStored decodes stored bytes of any version this build reads into v.
func decodeStored(b []byte, v any) error {
	if ver, ok := leadingVersion(b); ok && (ver < 0 || ver > storedVersion) {
		return fmt.Errorf("stored value of version %d, this build reads up to %d: %w", ver, storedVersion, engine.ErrCorrupt)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", err, engine.ErrCorrupt)
	}
	return nil
}

// leadingVersion returns the "v" a value starts with; ok is false for a
// value without one (version 0).
func leadingVersion(b []byte) (int, bool) {
	if !bytes.HasPrefix(b, []byte(versionPrefix)) {
		return 0, false
	}
	rest := b[len(versionPrefix):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return -1, true
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(rest[:end])))
	if err != nil {
		return -1, true
	}
	return n, true
}

// getJSON reads key in tx and decodes its stored value into v. A key that
// holds nothing is an error wrapping kv.ErrNotFound.
func getJSON(tx kv.Tx, key []byte, v any) error {
	b, err := tx.Get(key)
	if err != nil {
		return err
	}
	return decodeStored(b, v)
}
