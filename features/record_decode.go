package features

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
)

// decodeRecord decodes a stored record of any format; table returns the
// table a v3 record names. It never keeps a reference to data, so data may
// be a Badger value valid only in a callback. An unreadable record is an
// error wrapping errCorruptRecord (or, for v1, the JSON error);
// decodeRecord never panics, and what it allocates is in proportion to
// len(data), whatever counts data claims, plus the table's rules.
func decodeRecord(data []byte, table func(tableID) (*table, error)) (*engine.Record, error) {
	if len(data) < 9 {
		return nil, fmt.Errorf("decode decision: %d bytes: %w", len(data), errCorruptRecord)
	}
	switch data[8] {
	case recordV3, recordV2:
		return decodeBinary(data, table)
	case '{':
		return decodeRecordV1(data)
	}
	return nil, fmt.Errorf("decode decision: unknown format %#02x: %w", data[8], errCorruptRecord)
}

func decodeBinary(data []byte, table func(tableID) (*table, error)) (*engine.Record, error) {
	// One copy of the whole value as a string: every text field is a
	// substring of it, which saves an allocation per field. A decoded
	// record thus keeps the encoding alive, which is about the size of its
	// strings anyway.
	d := recordDecoder{b: data, s: string(data), off: 9}
	rec := &engine.Record{Seq: binary.BigEndian.Uint64(data[:8])}

	dec := &rec.Decision
	dec.ID = d.string()
	dec.TransactionID = d.string()
	dec.Outcome = engine.Outcome(d.string())
	dec.Score = d.int()
	if n := d.count(3); n > 0 {
		dec.Reasons = make([]engine.Reason, n)
		for i := range dec.Reasons {
			r := &dec.Reasons[i]
			r.Rule, r.Code, r.Message = d.string(), d.string(), d.string()
		}
	}
	d.limits(&dec.Limits)
	dec.RulesetVersion = d.varint()
	dec.Degraded = d.bool()
	dec.DegradedCause = decodeCause(d.string())
	dec.EvaluatedAt = d.time()

	d.payment(&rec.Payment)

	rec.Request = d.bytes()
	rec.RequestHash = d.string()
	if data[8] == recordV2 {
		d.resultsV2(rec)
	} else {
		d.resultsV3(rec, table)
	}
	rec.Thresholds.Challenge = d.int()
	rec.Thresholds.Deny = d.int()
	rec.DeterminedBy = d.string()
	if n := d.count(4); n > 0 {
		rec.Labels = make([]engine.Label, n)
		for i := range rec.Labels {
			l := &rec.Labels[i]
			l.Label, l.Note, l.Source, l.CreatedAt = d.string(), d.string(), d.string(), d.time()
		}
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail() // trailing bytes
	}
	if d.err != nil {
		return nil, d.err
	}
	return rec, nil
}

// resultsV2 reads the features and rules of a v2 record.
func (d *recordDecoder) resultsV2(rec *engine.Record) {
	if n := d.count(10); n > 0 {
		rec.Features = make([]engine.FeatureValue, n)
		for i := range rec.Features {
			f := &rec.Features[i]
			f.Name, f.Value, f.Ready = d.string(), d.float(), d.bool()
		}
	}
	rec.Rules = make([]engine.RuleResult, d.count(10))
	infos := make([]engine.RuleInfo, len(rec.Rules))
	for i := range rec.Rules {
		r, info := &rec.Rules[i], &infos[i]
		r.RuleInfo = info
		info.ID = d.string()
		info.Name = d.string()
		info.Version = d.int()
		info.Mode = engine.Mode(d.string())
		info.Action = engine.Action(d.string())
		info.Score = d.int()
		r.Matched = d.bool()
		r.Error = d.string()
		info.Reason = d.string()
		info.Message = d.string()
	}
}

// resultsV3 reads the table id, feature values and rule outcomes of a v3
// record and fills in the rest from the table.
func (d *recordDecoder) resultsV3(rec *engine.Record, table func(tableID) (*table, error)) {
	if len(d.b)-d.off < len(tableID{}) {
		d.fail()
		return
	}
	id := tableID(d.b[d.off:])
	d.off += len(id)
	t, err := table(id)
	if err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("decode decision: %w", err)
		}
		d.off = len(d.b)
		return
	}
	if n := d.count(9); n != len(t.features) {
		d.fail()
		return
	} else if n > 0 {
		rec.Features = make([]engine.FeatureValue, n)
		for i := range rec.Features {
			f := &rec.Features[i]
			f.Name, f.Value, f.Ready = t.features[i], d.float(), d.bool()
		}
	}
	if n := d.count(1); n != len(t.rules) {
		d.fail()
		return
	}
	rec.Rules = make([]engine.RuleResult, len(t.rules))
	for i := range rec.Rules {
		r := &rec.Rules[i]
		r.RuleInfo = &t.rules[i] // shared by every record of the table
		flags := d.byte()
		if flags&^(ruleMatched|ruleFailed) != 0 {
			d.fail()
			return
		}
		r.Matched = flags&ruleMatched != 0
		if flags&ruleFailed != 0 {
			if r.Error = d.string(); r.Error == "" {
				d.fail() // an empty error is written as no error
				return
			}
		}
	}
}

func (d *recordDecoder) limits(l *engine.Limits) {
	l.Entity = d.string()
	l.Currency = d.string()
	l.SingleMax = d.varint()
	l.DailyMax = d.varint()
	l.DailyRemaining = d.varint()
	l.DailySpent = d.varint()
	l.Trust = d.float()
	l.Policy = d.string()
	l.Segment = d.string()
	l.BaseSingleMax = d.varint()
	l.BaseDailyMax = d.varint()
	l.BaseCurrency = d.string()
	l.Rate = d.float()
	if n := d.count(1); n > 0 {
		l.Adjustments = make([]string, n)
		for i := range l.Adjustments {
			l.Adjustments[i] = d.string()
		}
	}
	if d.bool() {
		l.Override = &engine.LimitOverride{
			SingleMax: d.varint(), DailyMax: d.varint(), Reason: d.string(), Author: d.string(), ExpiresAt: d.time(),
		}
	}
}

func (d *recordDecoder) payment(p *engine.Payment) {
	p.TransactionID = d.string()
	p.OccurredAt = d.time()
	p.Amount = d.varint()
	p.Currency = d.string()
	p.Account.ID = d.string()
	p.Account.Email = d.string()
	p.Account.CreatedAt = d.time()
	p.Account.Country = d.string()
	p.Card.Fingerprint = d.string()
	p.Card.BIN = d.string()
	p.Card.Country = d.string()
	p.Device.ID = d.string()
	p.Device.IP = d.string()
	p.Device.IPCountry = d.string()
	p.Merchant.ID = d.string()
	p.Merchant.MCC = d.string()
	p.Merchant.Country = d.string()
	n := d.count(3)
	if n == 0 {
		return
	}
	p.Attributes = make(map[string]any, n)
	for range n {
		k := d.string()
		switch d.byte() {
		case attrString:
			p.Attributes[k] = d.string()
		case attrFloat:
			p.Attributes[k] = d.float()
		case attrFalse:
			p.Attributes[k] = false
		case attrTrue:
			p.Attributes[k] = true
		case attrJSON:
			i, j := d.span()
			var v any
			if d.err == nil && json.Unmarshal(d.b[i:j], &v) != nil {
				d.fail()
			}
			p.Attributes[k] = v
		default:
			d.fail()
		}
		if d.err != nil {
			return
		}
	}
}

// recordDecoder reads a v2 record, remembering the first error. After an
// error every read returns a zero value and every count is zero.
type recordDecoder struct {
	b   []byte // the record, sequence number included
	s   string // b as a string; text fields are substrings of it
	off int    // next byte of b to read
	err error
}

func (d *recordDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("decode decision at byte %d: %w", d.off, errCorruptRecord)
	}
	d.off = len(d.b)
}

func (d *recordDecoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *recordDecoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *recordDecoder) varint() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *recordDecoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *recordDecoder) float() float64 {
	if len(d.b)-d.off < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return math.Float64frombits(v)
}

// span reads a str and returns where its bytes are in d.b.
func (d *recordDecoder) span() (i, j int) {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0, 0
	}
	i = d.off
	d.off += int(n)
	return i, d.off
}

func (d *recordDecoder) string() string {
	i, j := d.span()
	return d.s[i:j]
}

// bytes reads a str as a copy; empty is nil.
func (d *recordDecoder) bytes() []byte {
	i, j := d.span()
	if i == j {
		return nil
	}
	return bytes.Clone(d.b[i:j])
}

// count reads a list length, refusing one that cannot fit in what is left
// when every item takes at least minSize bytes: that bounds what the caller
// allocates by the size of the input.
func (d *recordDecoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64((len(d.b)-d.off)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *recordDecoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec, nsec := d.varint(), d.uvarint()
		if nsec >= 1e9 {
			d.fail()
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	}
	d.fail()
	return time.Time{}
}

// decodeCause reads a stored degraded cause. Records written before causes
// were codes hold the error text ("features: read features: context
// deadline exceeded; rules: ..."); that text is mapped to the code of its
// first cause, so no stored error text reaches a gateway on a replay.
func decodeCause(s string) engine.Cause {
	if c := engine.Cause(s); s == "" || c.Valid() {
		return c
	}
	first, _, _ := strings.Cut(s, "; ")
	switch {
	case strings.HasPrefix(first, "features:"):
		if strings.Contains(first, "deadline exceeded") {
			return engine.CauseDeadline
		}
		return engine.CauseFeatureStoreUnavailable
	case strings.HasPrefix(first, "limits:"):
		if strings.Contains(first, "deadline exceeded") {
			return engine.CauseDeadline
		}
		return engine.CauseLimitsUnavailable
	case strings.HasPrefix(first, "rules:"):
		return engine.CauseRulesDeadline
	case strings.HasPrefix(first, "decision store:"):
		return engine.CauseDecisionStoreUnavailable
	case strings.HasPrefix(first, "panic:"):
		return engine.CauseInternal
	case strings.HasPrefix(first, "no rule set"):
		return engine.CauseNoRules
	}
	return engine.CauseOther
}
