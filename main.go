// Command risk is a payment risk-control and fraud screening engine: a
// gateway posts a payment and gets allow, challenge or deny, with a score,
// the reasons and the customer's dynamic limits.
//
// With no subcommand it serves HTTP. Subcommands:
//
//	risk rules validate FILE   check a rule set file offline
//	risk loadgen ...           drive a running engine with synthetic traffic
//	risk backup ...            back up a running server (--target) or a data dir (--data)
//	risk restore --data DIR F  restore a backup into a new data directory
//	risk cluster ...           import a single node into a cluster, verify it, rebuild features
//	risk keys generate         print a new random API key (for RISK_ADMIN_KEY)
//	risk replay ... EVENTS     decide a file of payments offline (docs/backtest.md)
//	risk version               print the version, commit and Go version
//
// Package main is wiring and configuration only: this file dispatches, and
// each subcommand lives in its own cmd_*.go file with its own flag set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // hour_of_day and day_of_week work in minimal images
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: it runs with the arguments after its name and
// stops early when ctx is cancelled (SIGINT or SIGTERM).
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// commands are the subcommands by name. Anything else is serving.
var commands = map[string]command{
	"rules":   rulesCommand,
	"loadgen": loadgenCommand,
	"replay":  replayCommand,
	"backup":  backupCommand,
	"restore": restoreCommand,
	"cluster": clusterCommand,
	"keys":    keysCommand,
	"version": versionCommand,
}

// run runs the command line args and returns the exit code: 0, or 1
// with the error on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	var err error
	if len(args) >= 1 && commands[args[0]] != nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = commands[args[0]](ctx, args[1:], stdout, stderr)
		stop()
	} else {
		err = serve(args, stdout, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "risk:", err)
		return 1
	}
	return 0
}
