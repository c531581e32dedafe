package features

import (
	"strings"
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/limits"
)

// spendEntity is how the limiter named an entity while it lived in this
// package: the daily spend feature's window key (name \0 v1 [\0 v2]) with
// the name replaced by the kind and each NUL by ':'.
func spendEntity(kind string, p *engine.Payment) (string, bool) {
	f := spentFeature(kind)
	key, ok := f.entityKey(p, nil)
	if !ok {
		return "", false
	}
	rest := key[len(f.def.Name)+1:]
	return kind + ":" + strings.ReplaceAll(string(rest), "\x00", ":"), true
}

// TestLimitsEntityOfMatchesSpend pins limits.EntityOf to the entity the
// daily spend is kept per: trust, overrides and recorded decisions are
// found by that string, so a payment must get the same one as before.
func TestLimitsEntityOfMatchesSpend(t *testing.T) {
	payments := map[string]engine.Payment{
		"all fields":  {Account: engine.Account{ID: "acc_42"}, Card: engine.Card{Fingerprint: "fp_1"}, Merchant: engine.Merchant{ID: "m_1"}},
		"no account":  {Card: engine.Card{Fingerprint: "fp_1"}, Merchant: engine.Merchant{ID: "m_1"}},
		"no card":     {Account: engine.Account{ID: "acc_42"}, Merchant: engine.Merchant{ID: "m_1"}},
		"no merchant": {Account: engine.Account{ID: "acc_42"}, Card: engine.Card{Fingerprint: "fp_1"}},
		"empty":       {},
		"colon in id": {Account: engine.Account{ID: "a:b"}, Merchant: engine.Merchant{ID: "m:2"}},
		"nul in id":   {Account: engine.Account{ID: "a\x00b"}, Card: engine.Card{Fingerprint: "f\x00p"}, Merchant: engine.Merchant{ID: "m\x00"}},
		"unicode":     {Account: engine.Account{ID: "ü_1"}, Card: engine.Card{Fingerprint: "指纹"}, Merchant: engine.Merchant{ID: "m_é"}},
	}
	for _, kind := range []string{limits.EntityAccount, limits.EntityCard, limits.EntityAccountMerchant} {
		for name, p := range payments {
			t.Run(kind+"/"+name, func(t *testing.T) {
				got, gotOK := limits.EntityOf(kind, &p)
				want, wantOK := spendEntity(kind, &p)
				if got != want || gotOK != wantOK {
					t.Errorf("EntityOf = %q, %v; the spend feature's entity is %q, %v", got, gotOK, want, wantOK)
				}
			})
		}
	}
}

// TestLimitsEntityKinds checks that the kinds limits.ValidEntity accepts
// are those the spend feature has fields for.
func TestLimitsEntityKinds(t *testing.T) {
	for _, kind := range []string{limits.EntityAccount, limits.EntityCard, limits.EntityAccountMerchant, "", "device", "Account"} {
		_, has := entityPaths(kind)
		if got := limits.ValidEntity(kind); got != has {
			t.Errorf("ValidEntity(%q) = %v, the spend feature has paths: %v", kind, got, has)
		}
	}
}
