package admin

import (
	"encoding/json"
	"fmt"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// formatJSON is the format byte every value this package stores starts
// with: rule set versions, drafts, API keys, audit entries and the canary,
// each the JSON of its stored type (storedRuleVersion, draftRule,
// draftMeta, storedKey, storedEntry, canaryState; none is a type the API
// serves). Values written before the byte existed start with '{' and are
// the same JSON: they are read as format 0, for good, since none of these
// expires. Any other first byte is a format from a later build, an error
// wrapping engine.ErrCorrupt, never a guess. Package review and notify use
// the same convention.
const formatJSON = 0x01

// encodeStored returns v's stored bytes: the format byte, then its JSON.
func encodeStored(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{formatJSON}, b...), nil
}

// decodeStored decodes stored bytes of any format this build reads into v.
func decodeStored(b []byte, v any) error {
	switch {
	case len(b) > 0 && b[0] == formatJSON:
		b = b[1:]
	case len(b) > 0 && b[0] == '{':
		// format 0: JSON written before the format byte
	case len(b) == 0:
		return fmt.Errorf("empty stored value: %w", engine.ErrCorrupt)
	default:
		return fmt.Errorf("stored value of format %#x, this build reads %#x and older: %w", b[0], formatJSON, engine.ErrCorrupt)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", err, engine.ErrCorrupt)
	}
	return nil
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
