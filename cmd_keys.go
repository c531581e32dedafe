package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/riskengine/risk/admin"
)

// keysCommand is `risk keys generate`: it prints a new random key, for
// RISK_ADMIN_KEY.
func keysCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	usage := errors.New("usage: risk keys generate")
	if len(args) == 0 || args[0] != "generate" {
		return usage
	}
	fs := flag.NewFlagSet("risk keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk keys generate\n\nPrints a new random API key, for RISK_ADMIN_KEY.\n")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usage
	}
	fmt.Fprintln(stdout, admin.GenerateKey())
	return nil
}
