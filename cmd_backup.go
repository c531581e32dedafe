package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/riskengine/risk/features"
)

// backupCommand is `risk backup --out FILE (--target URL | --data DIR)`.
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (required)")
	target := fs.String("target", env("RISK_TARGET", ""), "base URL of a running server to back up online; without --target and --data, the server at RISK_ADDR on this machine (default http://127.0.0.1:8080) [RISK_TARGET]")
	key := fs.String("key", env("RISK_API_KEY", env("RISK_ADMIN_KEY", "")), "admin API key for --target; prefer the environment variable [RISK_API_KEY, else RISK_ADMIN_KEY]")
	dir := fs.String("data", "", "data directory of a stopped server to back up offline")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk backup --out FILE [--target URL]  online, from a running server (admin key)\n"+
			"       risk backup --out FILE --data DIR     offline, from a stopped server's data directory\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" && *dir == "" {
		*target = localURL(env("RISK_ADDR", ":8080"))
	}
	switch {
	case *out == "":
		return errors.New("backup: --out is required")
	case *target != "" && *dir != "":
		return errors.New("backup: give one of --target (online) and --data (offline), not both")
	case fs.NArg() > 0:
		return fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	// Write beside the destination and rename once complete and verified,
	// so FILE is never a partial backup.
	tmp, err := os.CreateTemp(dirOf(*out), ".risk-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if *target != "" {
		err = downloadBackup(ctx, *target, *key, tmp)
	} else {
		_, err = features.BackupDir(ctx, *dir, tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	version, err := features.VerifyBackup(tmp)
	if err != nil {
		return fmt.Errorf("backup: the copy is not complete: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of version %d written to %s\n", version, *out)
	return nil
}

// localURL is the URL of a server listening on addr on this machine.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// dirOf is the directory part of path, with its trailing separator, or
// "." for a bare file name.
func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[:i+1]
	}
	return "."
}
