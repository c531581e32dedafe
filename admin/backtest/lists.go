package backtest

import (
	"fmt"
	"net/netip"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// seedLists answers in_list offline from the lists a rule file seeds. It is
// read-only once built and so safe for concurrent use.
type seedLists map[string]*seedList

type seedList struct {
	values   map[string]bool
	prefixes []netip.Prefix // cidr lists
}

var _ rules.Lists = seedLists(nil)

// newSeedLists builds the lists of a rule file. Kinds are string and cidr
// ("ip" is accepted as cidr), as in features.Lists, and cidr items are
// parsed and matched by the same code (features.ParseRange, ParseIP).
func newSeedLists(seeds []rules.ListSeed) (seedLists, error) {
	out := make(seedLists, len(seeds))
	for _, s := range seeds {
		l := &seedList{values: make(map[string]bool, len(s.Items))}
		switch s.Kind {
		case "string", "":
			for _, v := range s.Items {
				l.values[v] = true
			}
		case "cidr", "ip":
			for _, v := range s.Items {
				p, err := features.ParseRange(v)
				if err != nil {
					return nil, engine.Invalid("lists", "invalid_ip", fmt.Sprintf("list %q: %q is not an IP address or CIDR range", s.Name, v))
				}
				l.prefixes = append(l.prefixes, p)
			}
		default:
			return nil, engine.Invalid("lists", "invalid_kind", fmt.Sprintf("list %q: kind must be string, ip or cidr", s.Name))
		}
		out[s.Name] = l
	}
	return out, nil
}

// Contains implements rules.Lists.
func (s seedLists) Contains(list, value string) bool {
	l := s[list]
	if l == nil {
		return false
	}
	if l.prefixes == nil {
		return l.values[value]
	}
	a, ok := features.ParseIP(value)
	if !ok {
		return false
	}
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
