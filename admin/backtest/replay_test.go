package backtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// TestReplayDeterministic replays the synthetic data set in process and
// through the command (from standard input, flags after the file name,
// decisions to --out) and wants byte-identical decisions. The command's
// file path route is exercised by TestReplayCommandGate.
func TestReplayDeterministic(t *testing.T) {
	_, first := replayDataset(t, true)
	if n := bytes.Count(first, []byte("\n")); n < 2000 {
		t.Fatalf("%d decision lines", n)
	}
	data, err := os.ReadFile(datasetPath)
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	out := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := backtest.ReplayCommand(context.Background(), []string{"-", "--explain", "--out", out}, bytes.NewReader(data), &summary, &summary); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, first) {
		t.Fatal("replays of the same data set differ")
	}
	var sum backtest.Summary
	if err := json.Unmarshal(summary.Bytes(), &sum); err != nil || sum.Payments != int64(bytes.Count(first, []byte("\n"))) {
		t.Errorf("summary on standard output with --out: %v %+v", err, sum)
	}
}

// decided is the part of a decision line the tests read.
type decided struct {
	TransactionID string             `json:"transaction_id"`
	DecisionID    string             `json:"decision_id"`
	Decision      string             `json:"decision"`
	EvaluatedAt   string             `json:"evaluated_at"`
	MatchedRules  []string           `json:"matched_rules"`
	Features      map[string]float64 `json:"features"`
}

func replayLines(t *testing.T, cfg backtest.ReplayConfig, events string) ([]decided, *backtest.Summary) {
	t.Helper()
	evs, err := backtest.ReadEvents(strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := backtest.Replay(context.Background(), cfg, evs, &out)
	if err != nil {
		t.Fatal(err)
	}
	var lines []decided
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var d decided
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, d)
	}
	return lines, sum
}

// TestReplayPointInTime writes the events out of time order: each payment
// must see exactly the payments before it in time, whatever the file
// order, and a feature's where filter sees the replayed decisions.
func TestReplayPointInTime(t *testing.T) {
	cfg := backtest.ReplayConfig{
		Explain: true,
		Features: []features.Definition{
			{Name: "card_attempts_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"},
			{Name: "card_amount_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Sum, Field: "amount", Window: "1h"},
			{Name: "card_denials_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h", Where: `decision == "deny"`},
		},
		Rules: rules.File{Spec: rules.Spec{Rules: []rules.Rule{
			{ID: "third", Expression: "features.card_attempts_1h >= 2", Action: engine.ActionDeny},
		}}},
	}
	events := `{"transaction_id":"d","occurred_at":"2026-10-01T10:30:00Z","amount":4000,"currency":"USD","card":{"fingerprint":"c1"}}
{"transaction_id":"b","occurred_at":"2026-10-01T10:10:00Z","amount":2000,"currency":"USD","card":{"fingerprint":"c1"}}

{"transaction_id":"late","occurred_at":"2026-10-01T12:00:00Z","amount":5000,"currency":"USD","card":{"fingerprint":"c1"}}
{"transaction_id":"a","occurred_at":"2026-10-01T10:00:00Z","amount":1000,"currency":"USD","card":{"fingerprint":"c1"},"label":"legit"}
{"transaction_id":"c","occurred_at":"2026-10-01T10:20:00Z","amount":3000,"currency":"USD","card":{"fingerprint":"c1"},"label":"fraud"}
{"transaction_id":"other","occurred_at":"2026-10-01T10:25:00Z","amount":9000,"currency":"USD","card":{"fingerprint":"c2"}}
`
	lines, sum := replayLines(t, cfg, events)
	type want struct {
		tx       string
		decision string
		attempts float64
		amount   float64
		denials  float64
	}
	wants := []want{
		{"a", "allow", 0, 0, 0},
		{"b", "allow", 1, 1000, 0},
		{"c", "deny", 2, 3000, 0},
		{"other", "allow", 0, 0, 0},
		{"d", "deny", 3, 6000, 1},
		{"late", "allow", 0, 0, 0}, // 90 minutes later: the 1h window is empty
	}
	if len(lines) != len(wants) {
		t.Fatalf("%d lines, want %d", len(lines), len(wants))
	}
	for i, w := range wants {
		got := lines[i]
		f := got.Features
		if got.TransactionID != w.tx || got.Decision != w.decision || f["card_attempts_1h"] != w.attempts ||
			f["card_amount_1h"] != w.amount || f["card_denials_1h"] != w.denials {
			t.Errorf("line %d = %s %s %v, want %s %s attempts %v amount %v denials %v",
				i, got.TransactionID, got.Decision, f, w.tx, w.decision, w.attempts, w.amount, w.denials)
		}
	}
	if lines[0].EvaluatedAt != "2026-10-01T10:00:00Z" || !strings.HasPrefix(lines[0].DecisionID, "dec_") {
		t.Errorf("first line: evaluated_at %s, decision_id %s", lines[0].EvaluatedAt, lines[0].DecisionID)
	}
	if sum.Outcomes != (backtest.OutcomeCounts{Allow: 4, Deny: 2}) || sum.Rules[0].Hits != 2 || sum.Rules[0].Decisive != 2 {
		t.Errorf("summary outcomes %+v rules %+v", sum.Outcomes, sum.Rules)
	}
	l := sum.Labels
	if l == nil || l.Bad != 1 || l.Good != 1 || l.Unlabelled != 4 || l.Caught != 1 || *l.Precision != 1 || *l.Recall != 1 {
		t.Errorf("labels %+v", l)
	}
}

func TestReplayListsAndNoLimits(t *testing.T) {
	cfg := backtest.ReplayConfig{Rules: rules.File{
		Spec: rules.Spec{Rules: []rules.Rule{
			{ID: "ip", Expression: `in_list("bad_ips", device.ip)`, Action: engine.ActionDeny},
			{ID: "card", Expression: `in_list("bad_cards", card.fingerprint)`, Action: engine.ActionChallenge},
			{ID: "limit", Expression: `limits.single_max > 0 || limits.trust > 0`, Action: engine.ActionDeny},
		}},
		Lists: []rules.ListSeed{{Name: "bad_ips", Kind: "cidr", Items: []string{"198.51.100.0/24"}}, {Name: "bad_cards", Kind: "string", Items: []string{"c9"}}},
	}}
	events := `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","device":{"ip":"198.51.100.7"}}
{"transaction_id":"2","occurred_at":"2026-10-01T10:01:00Z","amount":1,"currency":"USD","card":{"fingerprint":"c9"}}
{"transaction_id":"3","occurred_at":"2026-10-01T10:02:00Z","amount":1,"currency":"USD","device":{"ip":"198.51.101.7"}}
`
	lines, _ := replayLines(t, cfg, events)
	got := []string{lines[0].Decision, lines[1].Decision, lines[2].Decision}
	if strings.Join(got, " ") != "deny challenge allow" {
		t.Errorf("decisions %v, want deny challenge allow (limits read as zero offline)", got)
	}
}

func TestReplayBadInput(t *testing.T) {
	tests := []struct {
		name   string
		events string
		want   string
	}{
		{"unknown field", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","amout":2}`, `line 1: amout: unknown field "amout"`},
		{"no time", `{"transaction_id":"1","amount":1,"currency":"USD"}`, "line 1: occurred_at: occurred_at is required offline: it orders the replay"},
		{"string amount", "\n" + `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":"1","currency":"USD"}`, "line 2: amount: amount must be an integer in minor units, not a JSON string or other value"},
		{"bad amount", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1.5,"currency":"USD"}`, "line 1: amount: amount must be a positive integer in minor units"},
		{"wrong type", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","card":{"country":1}}`, "line 1: card.country: card.country must be a string, not a JSON number"},
		{"bad label", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","label":"bad"}`, "line 1: label: label must be fraud, chargeback, legit, challenge_passed or challenge_failed"},
		{"card number", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","card":{"fingerprint":"4111 1111 1111 1111"}}`, "line 1: card.fingerprint: this field looks like a card number; send the card's fingerprint or token, never its number"},
		{"card number in a numeric attribute", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","attributes":{"ref":4.111111111111111e15}}`, "line 1: attributes.ref: this field looks like a card number; send the card's fingerprint or token, never its number"},
		{"card number as a field name", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD","4111111111111111":1}`, "line 1: this field looks like a card number; send the card's fingerprint or token, never its number"},
		{"duplicate", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD"}
{"transaction_id":"1","occurred_at":"2026-10-01T10:01:00Z","amount":1,"currency":"USD"}`, `line 2: transaction_id: transaction_id "1" was already used on line 1`},
		{"not json", `{"transaction_id":`, "line 1: the body is not valid JSON"},
		{"two objects", `{"transaction_id":"1","occurred_at":"2026-10-01T10:00:00Z","amount":1,"currency":"USD"} {}`, "line 1: the body must hold exactly one JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := backtest.ReadEvents(strings.NewReader(tt.events))
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant   %s", err, tt.want)
			}
		})
	}
}

// TestReplayCommandGate pins the CI gate: a recall target above what the
// sample rules reach fails the command, one below passes.
func TestReplayCommandGate(t *testing.T) {
	var out, summary bytes.Buffer
	err := backtest.ReplayCommand(context.Background(), []string{"--min-recall", "0.99", datasetPath}, nil, &out, &summary)
	if err == nil || !strings.Contains(err.Error(), "recall") || !strings.Contains(err.Error(), "is below 0.990") {
		t.Errorf("err = %v, want a recall below target error", err)
	}
	var sum backtest.Summary
	if jerr := json.Unmarshal(summary.Bytes(), &sum); jerr != nil || sum.Labels == nil {
		t.Errorf("summary on stderr is not the summary JSON: %v", jerr)
	}
	out.Reset()
	if err := backtest.ReplayCommand(context.Background(), []string{"--min-recall", "0.5", "--min-precision", "0.5", datasetPath}, nil, &out, &summary); err != nil {
		t.Errorf("err = %v, want the gate passed", err)
	}
	if err := backtest.ReplayCommand(context.Background(), []string{"a.jsonl", "b.jsonl"}, nil, &out, &summary); err == nil {
		t.Error("two files accepted")
	}
}
