package lists

import (
	"encoding/json"
	"fmt"
	"time"
)

// storedVersion is the version of the list and item values this code
// writes, in their "v" member. Values without one were written before the
// member existed, in the same layout (the API's JSON of List and Item at the
// time), and read as version 1; they stay readable for as long as a data
// dir may hold them, since list items without an expiry live forever. A
// value of a later version is an error, not a guess.
const storedVersion = 1

// storedList is the stored form of a List: the API's List may rename or
// add fields without changing what is on disk. The item count is not
// stored; it is counted on Load.
type storedList struct {
	V           int       `json:"v,omitempty"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Description string    `json:"description,omitempty"`
	Author      string    `json:"author,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// storedItem is the stored form of an Item of the list named List.
type storedItem struct {
	V         int       `json:"v,omitempty"`
	List      string    `json:"list"`
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func encodeList(m List) []byte {
	b, _ := json.Marshal(storedList{ // always encodes
		V: storedVersion, Name: m.Name, Kind: m.Kind, Description: m.Description,
		Author: m.Author, CreatedAt: m.CreatedAt,
	})
	return b
}

func decodeList(b []byte) (List, error) {
	var s storedList
	if err := json.Unmarshal(b, &s); err != nil {
		return List{}, fmt.Errorf("decode list: %w", err)
	}
	if err := checkVersion(s.V); err != nil {
		return List{}, fmt.Errorf("decode list %q: %w", s.Name, err)
	}
	return List{Name: s.Name, Kind: s.Kind, Description: s.Description, Author: s.Author, CreatedAt: s.CreatedAt}, nil
}

func encodeItem(list string, it Item) []byte {
	b, _ := json.Marshal(storedItem{ // always encodes
		V: storedVersion, List: list, Value: it.Value, Reason: it.Reason, Author: it.Author,
		CreatedAt: it.CreatedAt, ExpiresAt: it.ExpiresAt,
	})
	return b
}

// decodeItem returns an item and the name of its list.
func decodeItem(b []byte) (string, Item, error) {
	var s storedItem
	if err := json.Unmarshal(b, &s); err != nil {
		return "", Item{}, fmt.Errorf("decode list item: %w", err)
	}
	if err := checkVersion(s.V); err != nil {
		return "", Item{}, fmt.Errorf("decode item of list %q: %w", s.List, err)
	}
	return s.List, Item{Value: s.Value, Reason: s.Reason, Author: s.Author, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}, nil
}

// checkVersion accepts the versions this code reads: 0 (no "v" member,
// written before it existed) and 1.
func checkVersion(v int) error {
	if v < 0 || v > storedVersion {
		return fmt.Errorf("stored version %d, this build reads up to %d", v, storedVersion)
	}
	return nil
}
