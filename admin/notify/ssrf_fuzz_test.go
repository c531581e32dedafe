package notify

import (
	"context"
	"net/netip"
	"testing"
)

// FuzzCheckURL: whatever the URL, checkURL never panics, accepts only
// http(s) with a host, and never accepts a host that is, or resolves to,
// a blocked address when private destinations are not allowed.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/x", "http://127.0.0.1/", "http://[::ffff:10.0.0.1]:80/", "http://0x7f.1/",
		"http://169.254.169.254/latest", "HTTP://EXAMPLE.COM", "http://[fe80::1%25eth0]/", "ftp://x/", "//x/y",
		"http://2130706433/", "http://localhost./", "http://[::]/", "https://user@hooks.example.com/",
	} {
		f.Add(s)
	}
	// Every name resolves to a public address but "localhost" and
	// "internal", which resolve to blocked ones.
	r := resolverFunc(func(host string) []netip.Addr {
		switch host {
		case "localhost", "localhost.":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		case "internal":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}
		}
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}
	})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := checkURL(context.Background(), raw, false, r)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
			t.Fatalf("accepted %q: scheme %q host %q", raw, u.Scheme, u.Hostname())
		}
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); err == nil && blocked(ip) {
			t.Fatalf("accepted %q: blocked address %s", raw, ip)
		}
		for _, ip := range r(host) {
			if _, err := netip.ParseAddr(host); err != nil && blocked(ip) {
				t.Fatalf("accepted %q: %s resolves to blocked %s", raw, host, ip)
			}
		}
	})
}

type resolverFunc func(host string) []netip.Addr

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host), nil
}
