//go:build !linux

package backtest

// lowerPriority does nothing where thread priorities are not available:
// backtests then rely on yielding alone (see priority_linux.go).
func lowerPriority() error { return nil }
