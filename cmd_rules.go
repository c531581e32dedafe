package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// rulesCommand is `risk rules validate FILE [--features FILE]`. Each error
// is printed on a line of its own as FILE:LINE:COLUMN: message, the
// position being in FILE itself (an expression's error is moved from the
// expression to where it stands in the YAML).
func rulesCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	usage := errors.New("usage: risk rules validate FILE [--features FILE]")
	if len(args) == 0 || args[0] != "validate" {
		return usage
	}
	fs := flag.NewFlagSet("risk rules validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	featuresFile := fs.String("features", "", "feature definitions YAML file the rules compile against (default: the bundled sample)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk rules validate FILE [--features FILE]\n\n")
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(file) != 1 {
		return usage
	}
	return validateRules(file[0], *featuresFile, stdout)
}

// parseInterspersed parses fs from args, allowing flags after the
// positional arguments (FILE --features F), and returns the positional
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// validateRules checks the rule set file against the feature definitions
// of featuresFile (the bundled sample when empty).
func validateRules(file, featuresFile string, stdout io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defsData := features.Sample()
	if featuresFile != "" {
		if defsData, err = os.ReadFile(featuresFile); err != nil {
			return err
		}
	}
	defs, err := features.ParseDefinitions(defsData)
	if err != nil {
		return err
	}
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	// The same check, and so the same errors, as POST /admin/ruleset/import.
	f, err := admin.CheckFile(data, rules.Env{Features: names})
	var ce *rules.CompileError
	if errors.As(err, &ce) {
		for _, e := range ce.Errors {
			if line, col := rules.Locate(data, e); line > 0 {
				fmt.Fprintf(stdout, "%s:%d:%d: %s\n", file, line, col, locatedMessage(e))
			} else {
				fmt.Fprintf(stdout, "%s: %s\n", file, e.Error())
			}
		}
		return fmt.Errorf("%d error(s)", len(ce.Errors))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d rules, valid\n", file, len(f.Rules))
	return nil
}

// locatedMessage is e's message for a line that already carries its
// position in the file: an expression's error is its message alone (the
// position says which rule), any other names the rule.
func locatedMessage(e *rules.Error) string {
	if e.Line > 0 || e.Rule == "" {
		return e.Message
	}
	return fmt.Sprintf("rule %q: %s", e.Rule, e.Message)
}
