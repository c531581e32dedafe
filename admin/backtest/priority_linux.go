//go:build linux

package backtest

import (
	"runtime"
	"syscall"
)

// backgroundNice is the scheduling priority of a running backtest's
// thread. At 10 the kernel gives it about a tenth of a normal thread's
// share when they compete, so live decisions run first; it measured as
// well as 19 for live latency (docs/backtest.md). Not 19 (a seventieth):
// a thread starved that hard while it holds a processor or a short lock
// delays the whole process (a garbage collection waits for every running
// thread), the very latency it is meant to protect.
const backgroundNice = 10

// lowerPriority runs the calling goroutine on an OS thread of its own at
// a low scheduling priority. Go's scheduler has no priorities, and a
// backtest that keeps a core busy otherwise makes live decisions wait a
// kernel time slice whenever the machine is loaded.
//
// It locks the goroutine to its thread and never unlocks it: when the
// goroutine exits, the runtime ends the thread instead of reusing it at low
// priority for other goroutines. Call it only on a goroutine that exits
// when its backtest ends.
func lowerPriority() error {
	runtime.LockOSThread()
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
}
