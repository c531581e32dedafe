package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Subcommands: version and rules validate.

func TestVersion(t *testing.T) {
	line := regexp.MustCompile(`^risk \S+ \(commit \S+, go\S+\)\n$`)
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("risk %v = %d, stderr %s", args, code, stderr.String())
		}
		if !line.MatchString(stdout.String()) {
			t.Errorf("risk %v printed %q, want %s", args, stdout.String(), line)
		}
		outs = append(outs, stdout.String())
	}
	if outs[0] != outs[1] {
		t.Errorf("risk version %q and risk --version %q differ", outs[0], outs[1])
	}
	if !strings.Contains(outs[0], runtime.Version()) {
		t.Errorf("%q does not name the Go version %s", outs[0], runtime.Version())
	}
	if code := run([]string{"version", "extra"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("risk version extra = %d, want 1", code)
	}
}

func TestRulesValidateReportsFilePositions(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "challenge_threshold: 40\n"+
		"deny_threshold: 80\n"+
		"rules:\n"+
		"  - id: pause\n"+
		"    expression: |\n"+
		"      amount > 100\n"+
		"        && card.contry == \"FR\"\n"+
		"    action: deny\n"+
		"  - id: big\n"+
		"    expression: amount > 10 &&\n"+
		"      device.ipp == \"x\"\n"+
		"  - id: ok\n"+
		"    expression: amount > 0\n"+
		"    action: deny\n")
	want := bad + ":7:17: unknown name `card.contry`; did you mean `card.country`\n" +
		bad + ":9:5: rule \"big\": action is required: allow, challenge, deny, score or review\n" +
		bad + ":11:14: unknown name `device.ipp`; did you mean `device.ip`\n"
	for _, args := range [][]string{
		{"rules", "validate", bad},
		{"rules", "validate", bad, "--features", "features/sample/features.yaml"},
		{"rules", "validate", "--features=features/sample/features.yaml", bad},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Fatalf("risk %v = %d, want 1", args, code)
		}
		if got := stdout.String(); got != want {
			t.Errorf("risk %v printed\n%s\nwant\n%s", args, got, want)
		}
		if got := stderr.String(); got != "risk: 3 error(s)\n" {
			t.Errorf("stderr %q", got)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "rules:\n  - id: ok\n    expression: amount > 0\n    action: deny\n")
	var stdout bytes.Buffer
	if code := run([]string{"rules", "validate", good}, &stdout, &bytes.Buffer{}); code != 0 || stdout.String() != good+": 1 rules, valid\n" {
		t.Errorf("valid file: code %d, printed %q", code, stdout.String())
	}
	for _, args := range [][]string{{"rules"}, {"rules", "validate"}, {"rules", "validate", good, good}, {"rules", "validate", "--nope", good}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
			t.Errorf("risk %v = %d, want 1", args, code)
		}
	}
}

func writeFile(tb testing.TB, name, data string) {
	tb.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
}
