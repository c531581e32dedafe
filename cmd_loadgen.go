package main

import (
	"context"
	"io"

	"github.com/riskengine/risk/server/loadgen"
)

// loadgenCommand is `risk loadgen ...`, the load generator; its flags are
// its own (loadgen.Run).
func loadgenCommand(ctx context.Context, args []string, stdout, _ io.Writer) error {
	return loadgen.Run(ctx, args, stdout)
}
