package main

import (
	"context"
	"io"
	"os"

	"github.com/riskengine/risk/admin/backtest"
)

// replayCommand is `risk replay ... EVENTS`, the offline replay of a
// payments file (docs/backtest.md); its flags are its own
// (backtest.ReplayCommand). EVENTS "-" is standard input.
func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return backtest.ReplayCommand(ctx, args, os.Stdin, stdout, stderr)
}
