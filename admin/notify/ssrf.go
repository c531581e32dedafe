package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"

	"github.com/riskengine/risk/engine"
)

// MaxURLLen bounds a webhook URL.
const MaxURLLen = 2048

// errPrivate marks a destination in a range webhooks may not reach.
var errPrivate = errors.New("private destination")

// sharedRange is 100.64.0.0/10, carrier-grade NAT: private in practice,
// though netip does not say so.
var sharedRange = netip.MustParsePrefix("100.64.0.0/10")

// blocked reports whether ip is loopback, private, link-local (cloud
// metadata lives there), unspecified, multicast or shared address space.
func blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() || sharedRange.Contains(ip)
}

// Resolver looks up a host's addresses (net.DefaultResolver).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// checkURL validates a webhook URL: http or https, a host, no fragment,
// and unless allowPrivate every address the host resolves to outside the
// blocked ranges. Errors are *engine.FieldError for field "url".
func checkURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) (*url.URL, error) {
	bad := func(code, msg string) error { return engine.Invalid("url", code, msg) }
	if raw == "" {
		return nil, bad("required", "url is required")
	}
	if len(raw) > MaxURLLen {
		return nil, bad("too_long", fmt.Sprintf("url is longer than %d characters", MaxURLLen))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return nil, bad("invalid_url", "url must be an absolute http or https URL")
	}
	if u.User != nil {
		return nil, bad("invalid_url", "url must not carry a user name or password; put a token in the path or rely on the signature")
	}
	if allowPrivate {
		return u, nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return nil, bad("unresolvable_host", fmt.Sprintf("host %q does not resolve", host))
		}
	}
	for _, ip := range addrs {
		if blocked(ip) {
			return nil, bad("private_address", fmt.Sprintf("host %q is a loopback, private or link-local address; webhooks may reach it only with --webhook-allow-private", host))
		}
	}
	return u, nil
}

// dialControl refuses, at connect time, an address in the blocked ranges:
// the host may resolve elsewhere than when the webhook was created.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, errPrivate)
		}
		if blocked(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", ap.Addr(), errPrivate)
		}
		return nil
	}
}

// newDialer is the dialer of webhook deliveries.
func newDialer(allowPrivate bool) *net.Dialer {
	return &net.Dialer{Timeout: DefaultTimeout, Control: dialControl(allowPrivate)}
}
