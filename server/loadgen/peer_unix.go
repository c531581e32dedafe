//go:build unix

package loadgen

import (
	"net"
	"syscall"
)

// peerClosed reports whether an idle connection can no longer carry a
// request: the server closed or reset it, or sent bytes nobody asked for.
// It costs one non-blocking recv with MSG_PEEK and consumes nothing.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var closed bool
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Go's sockets are non-blocking: no data is EAGAIN, not a wait.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		switch err {
		case nil: // 0 bytes is the server's FIN, more is unasked-for data
			closed = true
		case syscall.EAGAIN, syscall.EINTR:
		default:
			closed = true
		}
		return true
	})
	return closed || err != nil
}
