package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/riskengine/risk/features"
)

// restoreCommand is `risk restore --data DIR FILE`.
func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", env("RISK_DATA_DIR", "./data"), "new data directory to restore into; it must not exist or be empty [RISK_DATA_DIR]")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk restore [--data DIR] FILE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		fs.Usage()
		return errors.New("restore: want one backup FILE (and --data DIR)")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	version, err := features.Restore(ctx, *dir, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored version %d into %s; start the server with --data %s\n", version, *dir, *dir)
	return nil
}
