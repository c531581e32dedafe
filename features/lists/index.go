package lists

import (
	"fmt"
	"net/netip"
	"time"
)

// memList is one list in memory: its items by value and, for a cidr list,
// the index lookups use.
type memList struct {
	meta  List
	items map[string]Item
	// byLen maps each prefix length present in a cidr list to the masked
	// prefixes of that length, so a lookup costs one map probe per length.
	byLen map[int]map[netip.Prefix]time.Time
	// nextExpiry is the earliest expiry among items (zero: none expires);
	// expired items are purged from memory once it has passed.
	nextExpiry time.Time
}

func newMemList(m List) *memList {
	ml := &memList{meta: m, items: map[string]Item{}}
	if m.Kind == KindCIDR {
		ml.byLen = map[int]map[netip.Prefix]time.Time{}
	}
	return ml
}

func (ml *memList) add(it Item) {
	ml.items[it.Value] = it
	if !it.ExpiresAt.IsZero() && (ml.nextExpiry.IsZero() || it.ExpiresAt.Before(ml.nextExpiry)) {
		ml.nextExpiry = it.ExpiresAt
	}
	if ml.byLen != nil {
		p, _ := ParseRange(it.Value) // validated before it was stored
		m := ml.byLen[p.Bits()]
		if m == nil {
			m = map[netip.Prefix]time.Time{}
			ml.byLen[p.Bits()] = m
		}
		m[p] = it.ExpiresAt
	}
}

func (ml *memList) remove(value string) {
	delete(ml.items, value)
	if ml.byLen != nil {
		if p, err := ParseRange(value); err == nil {
			delete(ml.byLen[p.Bits()], p)
			if len(ml.byLen[p.Bits()]) == 0 {
				delete(ml.byLen, p.Bits()) // Contains probes one map per length
			}
		}
	}
}

// purge forgets the expired items of ml, if any are due. The caller holds
// l.wmu.
func (l *Store) purge(ml *memList) {
	now := l.now()
	if ml.nextExpiry.IsZero() || now.Before(ml.nextExpiry) {
		return
	}
	l.mu.Lock()
	ml.purge(now)
	l.mu.Unlock()
}

// purge forgets expired items once the earliest expiry has passed, so
// expired entries neither use memory nor count. Badger drops them itself
// (their keys carry a TTL). The caller holds l.wmu and l.mu.
func (ml *memList) purge(now time.Time) {
	if ml.nextExpiry.IsZero() || now.Before(ml.nextExpiry) {
		return
	}
	ml.nextExpiry = time.Time{}
	for v, it := range ml.items {
		switch {
		case it.ExpiresAt.IsZero():
		case !now.Before(it.ExpiresAt):
			ml.remove(v)
		case ml.nextExpiry.IsZero() || it.ExpiresAt.Before(ml.nextExpiry):
			ml.nextExpiry = it.ExpiresAt
		}
	}
}

// parseRange parses an IP or CIDR into a masked prefix. An IPv4-mapped
// IPv6 range becomes the IPv4 range, as lookups unmap addresses.
func ParseRange(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseIP parses an address looked up in a cidr list, unmapping an
// IPv4-mapped IPv6 address to IPv4 as ParseRange does with ranges.
func ParseIP(v string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// canonicalRange is how a cidr list stores a range: a single address
// without "/n", a range masked ("10.1.2.3/8" is "10.0.0.0/8").
func canonicalRange(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// live reports whether an item expiring at expires is live at now.
func live(expires, now time.Time) bool { return expires.IsZero() || now.Before(expires) }
