package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/riskengine/risk/server"
)

// versionCommand is `risk version`, the same as `risk --version`.
func versionCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk version\n\nPrints the version, commit and Go version of this build.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version: unexpected argument %q", fs.Arg(0))
	}
	return printVersion(stdout)
}

// printVersion prints the build one line: risk VERSION (commit COMMIT, GOVERSION).
func printVersion(w io.Writer) error {
	b := buildInfo()
	_, err := fmt.Fprintf(w, "risk %s (commit %s, %s)\n", b.Version, b.Commit, b.GoVersion)
	return err
}

// buildInfo is this binary's version, commit and Go version, from the
// build information the Go toolchain embeds. Without it (a test binary
// built without module information) each is "unknown"; a build from a
// modified tree has "+dirty" after the commit.
func buildInfo() server.BuildInfo {
	b := server.BuildInfo{Version: "unknown", Commit: "unknown", GoVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = info.GoVersion
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Commit != "unknown" {
		b.Commit += "+dirty"
	}
	return b
}
