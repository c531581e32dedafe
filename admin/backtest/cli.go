package backtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// replayFlags are the options of `risk replay`.
type replayFlags struct {
	rules, features, out, summary string
	explain                       bool
	minPrecision, minRecall       float64
}

// ReplayCommand is `risk replay [flags] EVENTS`: it replays an events file
// (one JSON payment per line; "-" reads standard input) offline and writes
// the decisions, one per line, to standard output or --out, and the summary
// as JSON to --summary, else to standard output when --out is given, else to
// standard error. With --min-precision or --min-recall it fails when the
// labelled events fall short, so a CI job can gate a rule change on it.
// Flags may come before or after the file name.
func ReplayCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f replayFlags
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk replay [flags] EVENTS.jsonl|-\n\n"+
			"Decides a file of payments offline, in time order, computing features from the file itself.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.rules, "rules", "", "rule set YAML file (default: the bundled sample); its lists seed in_list")
	fs.StringVar(&f.features, "features", "", "feature definitions YAML file (default: the bundled sample)")
	fs.StringVar(&f.out, "out", "", "write decisions to this file instead of standard output")
	fs.StringVar(&f.summary, "summary", "", "write the summary JSON to this file")
	fs.BoolVar(&f.explain, "explain", false, "add feature values and rule results to every decision")
	fs.Float64Var(&f.minPrecision, "min-precision", 0, "fail when the precision against labels is below this (0 disables)")
	fs.Float64Var(&f.minRecall, "min-recall", 0, "fail when the recall against labels is below this (0 disables)")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return fmt.Errorf("replay takes exactly one events file (or - for standard input), got %d", len(files))
	}

	cfg, err := f.config()
	if err != nil {
		return err
	}
	in := stdin
	if files[0] != "-" {
		file, err := os.Open(files[0])
		if err != nil {
			return err
		}
		defer file.Close()
		in = file
	}
	events, err := ReadEvents(in)
	if err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}

	out, summaryOut := stdout, stderr
	var outFile *os.File
	if f.out != "" {
		if outFile, err = os.Create(f.out); err != nil {
			return err
		}
		defer outFile.Close() // after an error; the success path closes it below
		out, summaryOut = outFile, stdout
	}
	sum, err := Replay(ctx, cfg, events, out)
	if err != nil {
		return err
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil {
			return fmt.Errorf("write %s: %w", f.out, err)
		}
	}
	if err := writeSummary(sum, f.summary, summaryOut); err != nil {
		return err
	}
	return f.gate(sum)
}

// config reads the rule and feature files, or the bundled samples.
func (f *replayFlags) config() (ReplayConfig, error) {
	cfg := ReplayConfig{Explain: f.explain}
	data := rules.Sample()
	if f.rules != "" {
		b, err := os.ReadFile(f.rules)
		if err != nil {
			return cfg, err
		}
		data = b
	}
	var err error
	if cfg.Rules, err = rules.ParseFile(data); err != nil {
		return cfg, fmt.Errorf("%s: %w", name(f.rules, "bundled sample rules"), err)
	}
	data = features.Sample()
	if f.features != "" {
		if data, err = os.ReadFile(f.features); err != nil {
			return cfg, err
		}
	}
	if cfg.Features, err = features.ParseDefinitions(data); err != nil {
		return cfg, fmt.Errorf("%s: %w", name(f.features, "bundled sample features"), err)
	}
	return cfg, nil
}

func name(file, fallback string) string {
	if file == "" {
		return fallback
	}
	return file
}

func writeSummary(sum *Summary, file string, w io.Writer) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	b = append(b, '\n')
	if file != "" {
		return os.WriteFile(file, b, 0o644)
	}
	_, err = w.Write(b)
	return err
}

// errBelowTarget marks a replay whose precision or recall fell short of
// the --min-* flags.
var errBelowTarget = errors.New("below target")

// gate checks the --min-precision and --min-recall targets.
func (f *replayFlags) gate(sum *Summary) error {
	if f.minPrecision <= 0 && f.minRecall <= 0 {
		return nil
	}
	if sum.Labels == nil {
		return fmt.Errorf("--min-precision and --min-recall need labelled events: %w", errBelowTarget)
	}
	check := func(what string, got *float64, want float64) error {
		if want <= 0 {
			return nil
		}
		if got == nil {
			return fmt.Errorf("%s is undefined (no labelled payment counts towards it), want at least %.3f: %w", what, want, errBelowTarget)
		}
		if *got < want {
			return fmt.Errorf("%s %.3f is below %.3f: %w", what, *got, want, errBelowTarget)
		}
		return nil
	}
	if err := check("precision", sum.Labels.Precision, f.minPrecision); err != nil {
		return err
	}
	return check("recall", sum.Labels.Recall, f.minRecall)
}
