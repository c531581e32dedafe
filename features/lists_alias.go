package features

import (
	"net/netip"
	"time"

	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/lists"
)

// The block and allow lists moved to package features/lists. These aliases
// keep existing callers compiling while they move over; new code uses
// package lists directly.

// Lists is lists.Store.
//
// Deprecated: use lists.Store.
type Lists = lists.Store

// List is lists.List.
//
// Deprecated: use lists.List.
type List = lists.List

// Item is lists.Item.
//
// Deprecated: use lists.Item.
type Item = lists.Item

// List kinds and bounds, as in package lists.
//
// Deprecated: use the constants of package lists.
const (
	KindString       = lists.KindString
	KindCIDR         = lists.KindCIDR
	MaxListItems     = lists.MaxItems
	MaxListValueLen  = lists.MaxValueLen
	MaxListReasonLen = lists.MaxReasonLen
)

// NewLists is lists.New.
//
// Deprecated: use lists.New.
func NewLists(db kv.DB, now func() time.Time) *Lists { return lists.New(db, now) }

// ParseRange is lists.ParseRange.
//
// Deprecated: use lists.ParseRange.
func ParseRange(v string) (netip.Prefix, error) { return lists.ParseRange(v) }

// ParseIP is lists.ParseIP.
//
// Deprecated: use lists.ParseIP.
func ParseIP(v string) (netip.Addr, bool) { return lists.ParseIP(v) }
