//go:build !unix

package loadgen

import "net"

// peerClosed reports whether an idle connection can no longer carry a
// request. Without a portable non-blocking peek it assumes the connection
// is usable; a close by the server then fails one request, which reconnects.
func peerClosed(net.Conn) bool { return false }
