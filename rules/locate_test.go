package rules_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/riskengine/risk/rules"
)

// TestLocate pins where `risk rules validate` reports an error: the
// position of the offending character in the file itself, whatever the
// YAML style of the expression. An unknown member name is reported at the
// member (contry in card.contry), as the expression's own position says.
func TestLocate(t *testing.T) {
	const head = "challenge_threshold: 40\ndeny_threshold: 80\nrules:\n" +
		"  - id: ok\n    expression: amount > 0\n    action: deny\n"
	tests := []struct {
		name string
		rule string // appended to head, which is 6 lines
		want []string
	}{{
		name: "plain",
		rule: "  - id: r\n    expression: amount > 0 && card.contry == \"FR\"\n    action: deny\n",
		want: []string{"8:36: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "double quoted",
		rule: "  - id: r\n    expression: \"card.contry == 'FR'\"\n    action: deny\n",
		want: []string{"8:23: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "single quoted with an escaped quote",
		rule: "  - id: r\n    expression: 'card.country == ''FR'' && card.contry == ''DE'''\n    action: deny\n",
		want: []string{"8:49: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "plain over several lines",
		rule: "  - id: r\n    expression: amount > 0 &&\n      card.country == \"FR\" &&\n        card.contry == \"DE\"\n    action: deny\n",
		want: []string{"10:14: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "literal block, error on its third line",
		rule: "  - id: r\n    expression: |\n      amount > 0\n      && card.country == \"FR\"\n      &&   card.contry == \"DE\"\n    action: deny\n",
		want: []string{"11:17: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "folded block",
		rule: "  - id: r\n    expression: >-\n      amount > 0\n      && card.contry == \"DE\"\n    action: deny\n",
		want: []string{"10:15: unknown name `card.contry`; did you mean `card.country`"},
	}, {
		name: "two errors in one block",
		rule: "  - id: r\n    expression: |\n      card.contry == \"FR\"\n      || device.ipp == \"x\"\n    action: deny\n",
		want: []string{
			"9:12: unknown name `card.contry`; did you mean `card.country`",
			"10:17: unknown name `device.ipp`; did you mean `device.ip`",
		},
	}, {
		name: "missing field points at the rule",
		rule: "  - id: r\n    expression: amount > 0\n",
		want: []string{"7:5: action is required: allow, challenge, deny, score or review"},
	}, {
		name: "bad field points at its value",
		rule: "  - id: r\n    expression: amount > 0\n    action: ban\n",
		want: []string{"9:13: unknown action \"ban\": use allow, challenge, deny, score or review"},
	}, {
		name: "duplicate id points at the duplicate",
		rule: "  - id: ok\n    expression: amount > 1\n    action: deny\n",
		want: []string{"7:9: duplicate rule id \"ok\""},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(head + tt.rule)
			f, err := rules.ParseFile(data)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rules.Compile(f.Spec, rules.Env{}, 0)
			var ce *rules.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile: %v, want a *CompileError", err)
			}
			var got []string
			for _, e := range ce.Errors {
				line, col := rules.Locate(data, e)
				got = append(got, fmt.Sprintf("%d:%d: %s", line, col, e.Message))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("located errors\n got %q\nwant %q\nfile:\n%s", got, tt.want, data)
			}
		})
	}
}

func TestLocateUnplaceable(t *testing.T) {
	e := &rules.Error{Rule: "nope", Field: "expression", Line: 1, Column: 1, Message: "x"}
	if line, col := rules.Locate([]byte("rules: []\n"), e); line != 0 || col != 0 {
		t.Errorf("unknown rule: %d:%d, want 0:0", line, col)
	}
	if line, col := rules.Locate([]byte(":\n\t- ["), e); line != 0 || col != 0 {
		t.Errorf("bad YAML: %d:%d, want 0:0", line, col)
	}
}
