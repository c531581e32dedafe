package limits

import (
	"strings"

	"github.com/riskengine/risk/engine"
)

// Entity kinds limits may be kept per.
const (
	EntityAccount         = "account"
	EntityCard            = "card"
	EntityAccountMerchant = "account_merchant"
)

// ValidEntity reports whether kind is an entity kind limits may be kept
// per: EntityAccount, EntityCard or EntityAccountMerchant.
func ValidEntity(kind string) bool {
	switch kind {
	case EntityAccount, EntityCard, EntityAccountMerchant:
		return true
	}
	return false
}

// EntityOf returns the limit entity of p for kind as decisions show it:
// "account:acc_42", "card:fp_1", "account_merchant:acc_42:m_1". ok is
// false when p lacks a field the kind needs (an empty account id, say) or
// kind is not valid; such a payment has no limits.
//
// It must name the entity exactly as the daily spend feature of package
// features keys it (its window key with each NUL read as ':'), since the
// trust, overrides and decisions of an entity are found by this string.
func EntityOf(kind string, p *engine.Payment) (string, bool) {
	var parts [2]string
	n := 0
	switch kind {
	case EntityAccount:
		parts[0], n = p.Account.ID, 1
	case EntityCard:
		parts[0], n = p.Card.Fingerprint, 1
	case EntityAccountMerchant:
		parts[0], parts[1], n = p.Account.ID, p.Merchant.ID, 2
	default:
		return "", false
	}
	var b strings.Builder
	b.Grow(len(kind) + 2 + len(parts[0]) + len(parts[1]))
	b.WriteString(kind)
	for _, v := range parts[:n] {
		if v == "" {
			return "", false
		}
		b.WriteByte(':')
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c == 0 { // the window key separates values with NUL
				c = ':'
			}
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
