package backtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/riskengine/risk/engine"
)

// MaxEventBytes bounds one line of an events file.
const MaxEventBytes = 1 << 20

// Event is one line of an events file: a payment in the JSON shape of
// POST /v1/decisions, plus an optional feedback label ("fraud", "legit",
// ...). Line is its 1-based line number in the file.
type Event struct {
	Payment engine.Payment
	Label   string
	Line    int
}

// DecodeEvent parses one event: a payment decoded as the server decodes a
// request (engine.DecodeLabelledPayment: the same fields, errors and card
// number check), plus an optional label. Errors are *engine.FieldError
// naming the field at fault. Offline, occurred_at is required (it orders
// the replay), and the payment must pass the same validation as a live
// request, made at its own time.
func DecodeEvent(data []byte) (Event, error) {
	p, label, err := engine.DecodeLabelledPayment(data)
	if err != nil {
		return Event{}, err
	}
	if p.OccurredAt.IsZero() {
		return Event{}, engine.Invalid("occurred_at", "required", "occurred_at is required offline: it orders the replay")
	}
	// Offline, "now" is when the payment happened.
	if err := p.Validate(p.OccurredAt); err != nil {
		return Event{}, err
	}
	if label != "" && !engine.ValidLabel(label) {
		return Event{}, engine.Invalid("label", "invalid_label", "label must be fraud, chargeback, legit, challenge_passed or challenge_failed")
	}
	return Event{Payment: p, Label: label}, nil
}

// ReadEvents reads one event per line (blank lines are skipped). An error
// names the line: "line 12: amount: ...".
func ReadEvents(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventBytes)
	var out []Event
	seen := make(map[string]int)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := DecodeEvent(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[ev.Payment.TransactionID]; dup {
			return nil, fmt.Errorf("line %d: %w", n, engine.Invalid("transaction_id", "duplicate",
				fmt.Sprintf("transaction_id %q was already used on line %d", ev.Payment.TransactionID, first)))
		}
		seen[ev.Payment.TransactionID] = n
		ev.Line = n
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", len(out)+1, MaxEventBytes)
		}
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
