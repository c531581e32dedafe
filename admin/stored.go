package admin

import (
	"encoding/json"

	"github.com/riskengine/risk/features/kv"
)

// getJSON reads key in tx and decodes its JSON value into v. A key that
// holds nothing is an error wrapping kv.ErrNotFound.
func getJSON(tx kv.Tx, key []byte, v any) error {
	b, err := tx.Get(key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
