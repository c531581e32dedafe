package console

import (
	"net"
	"sync"
	"time"
)

// Sign-in throttling: a client address that failed maxFailures sign-ins
// within failureWindow is refused (429) until the window ends. Keys are
// long random secrets, so this is not what keeps them safe; it keeps a
// guesser from using the console as a fast oracle and makes the attempt
// visible in the log.
const (
	maxFailures   = 10
	failureWindow = 10 * time.Minute
	maxTracked    = 10000
)

type failures struct {
	n     int
	start time.Time
}

// throttle counts failed sign-ins per client address. Safe for concurrent
// use.
type throttle struct {
	mu  sync.Mutex
	now func() time.Time
	by  map[string]*failures
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, by: map[string]*failures{}}
}

// clientAddr is the connection's address without the port (not a
// forwarded header, which the client could choose).
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// blocked reports whether addr has used up its failures.
func (t *throttle) blocked(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.by[addr]
	if !ok {
		return false
	}
	if t.now().Sub(f.start) >= failureWindow {
		delete(t.by, addr)
		return false
	}
	return f.n >= maxFailures
}

// fail counts one failed sign-in of addr.
func (t *throttle) fail(addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.by) >= maxTracked {
		for a, f := range t.by {
			if now.Sub(f.start) >= failureWindow {
				delete(t.by, a)
			}
		}
		if len(t.by) >= maxTracked {
			return // full of live entries: count no more rather than grow
		}
	}
	f, ok := t.by[addr]
	if !ok || now.Sub(f.start) >= failureWindow {
		f = &failures{start: now}
		t.by[addr] = f
	}
	f.n++
}
