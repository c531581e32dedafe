package features

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/riskengine/risk/engine"
)

// A decision record is stored as an 8-byte big-endian sequence number
// followed by one of two encodings, told apart by the byte after it:
//
//	'{'   v1: storedRecord as JSON. No longer written, still read, so stored
//	      history stays readable until it expires.
//	0x02  v2: the binary encoding below, written by encodeRecord. It is
//	      on the path of every decision (encode) and of every replayed
//	      backtest record (decode), where JSON cost ~50 µs and ~300 µs a
//	      record; v2 is several times faster to encode and over twenty
//	      times faster to decode (BenchmarkEncodeRecord,
//	      BenchmarkDecodeRecord).
//
// v2, after the format byte, in this order; str is a uvarint length and the
// bytes, int a varint, float 8 bytes little-endian IEEE 754, bool one byte
// (0 or 1), time one byte (0: the zero time, nothing follows; 1: varint Unix
// seconds, uvarint nanoseconds) and list a uvarint count then the items:
//
//	decision  str ID, str TransactionID, str Outcome, int Score,
//	          list Reasons (str Rule, str Code, str Message),
//	          limits, int RulesetVersion, bool Degraded, str DegradedCause,
//	          time EvaluatedAt
//	limits    str Entity, str Currency, int SingleMax, int DailyMax,
//	          int DailyRemaining, int DailySpent, float Trust, str Policy,
//	          str Segment, int BaseSingleMax, int BaseDailyMax,
//	          str BaseCurrency, float Rate, list Adjustments (str),
//	          bool has override, then if set: int SingleMax, int DailyMax,
//	          str Reason, str Author, time ExpiresAt
//	payment   str TransactionID, time OccurredAt, int Amount, str Currency,
//	          str Account.ID, str Account.Email, time Account.CreatedAt,
//	          str Account.Country, str Card.Fingerprint, str Card.BIN,
//	          str Card.Country, str Device.ID, str Device.IP,
//	          str Device.IPCountry, str Merchant.ID, str Merchant.MCC,
//	          str Merchant.Country, list Attributes in key order (str key,
//	          byte tag, value: see attrString and the tags after it)
//	rest      str Request, str RequestHash,
//	          list Features (str Name, float Value, bool Ready),
//	          list Rules (str ID, str Name, int Version, str Mode,
//	          str Action, int Score, bool Matched, str Error, str Reason,
//	          str Message),
//	          int Thresholds.Challenge, int Thresholds.Deny,
//	          str DeterminedBy, list Labels (str Label, str Note,
//	          str Source, time CreatedAt)
//
// Nothing may follow the last label. A change to the layout takes a new
// format byte; decodeRecord must keep reading every older one.
//
// What a round trip keeps: every exported field of engine.Record, with two
// normalisations v1 also made in its own way. Times come back in UTC
// without a monotonic reading (equal under time.Time.Equal; the zero time
// comes back as time.Time{}). Empty slices and maps come back nil, except
// Rules, which comes back non-nil as it did from v1. Unlike v1, Request
// comes back byte for byte as received (v1 compacted it, escaped HTML in it
// and dropped it when it was not JSON; readers check it with json.Valid),
// and Limits come back whole even without an Entity (v1 dropped them).
const recordV2 = 0x02

// Attribute value tags. engine.Payment.Validate admits only string, float64
// and bool; any other value (a payment that did not go through it) is stored
// as JSON and comes back as json.Unmarshal gives it into an any, which is
// what v1 did: an int comes back as a float64, nil as nil. A value JSON
// cannot encode makes encodeRecord fail, as it did in v1.
const (
	attrString = 1 // str
	attrFloat  = 2 // float
	attrFalse  = 3 // nothing follows
	attrTrue   = 4 // nothing follows
	attrJSON   = 5 // str holding JSON
)

// errCorruptRecord is wrapped by every error decodeRecord returns for an
// unreadable record.
var errCorruptRecord = errors.New("corrupt decision record")

// encodeRecord returns the v2 encoding of rec with a zero sequence number
// in front, for the committer to fill in. The encoding is deterministic.
func encodeRecord(rec *engine.Record) ([]byte, error) {
	return appendRecord(nil, rec)
}

// appendRecord is encodeRecord into buf's spare capacity (buf's contents
// are dropped).
func appendRecord(buf []byte, rec *engine.Record) ([]byte, error) {
	if n := 9 + recordSize(rec); cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	buf = append(buf[:0], 0, 0, 0, 0, 0, 0, 0, 0, recordV2)

	d := &rec.Decision
	buf = appendString(buf, d.ID)
	buf = appendString(buf, d.TransactionID)
	buf = appendString(buf, string(d.Outcome))
	buf = binary.AppendVarint(buf, int64(d.Score))
	buf = binary.AppendUvarint(buf, uint64(len(d.Reasons)))
	for i := range d.Reasons {
		r := &d.Reasons[i]
		buf = appendString(buf, r.Rule)
		buf = appendString(buf, r.Code)
		buf = appendString(buf, r.Message)
	}
	buf = appendLimits(buf, &d.Limits)
	buf = binary.AppendVarint(buf, d.RulesetVersion)
	buf = appendBool(buf, d.Degraded)
	buf = appendString(buf, d.DegradedCause)
	buf = appendTime(buf, d.EvaluatedAt)

	buf, err := appendPayment(buf, &rec.Payment)
	if err != nil {
		return nil, fmt.Errorf("encode decision %s: %w", rec.ID, err)
	}

	buf = appendBytes(buf, rec.Request)
	buf = appendString(buf, rec.RequestHash)
	buf = binary.AppendUvarint(buf, uint64(len(rec.Features)))
	for i := range rec.Features {
		f := &rec.Features[i]
		buf = appendString(buf, f.Name)
		buf = appendFloat(buf, f.Value)
		buf = appendBool(buf, f.Ready)
	}
	buf = binary.AppendUvarint(buf, uint64(len(rec.Rules)))
	for i := range rec.Rules {
		r := &rec.Rules[i]
		buf = appendString(buf, r.ID)
		buf = appendString(buf, r.Name)
		buf = binary.AppendVarint(buf, int64(r.Version))
		buf = appendString(buf, string(r.Mode))
		buf = appendString(buf, string(r.Action))
		buf = binary.AppendVarint(buf, int64(r.Score))
		buf = appendBool(buf, r.Matched)
		buf = appendString(buf, r.Error)
		buf = appendString(buf, r.Reason)
		buf = appendString(buf, r.Message)
	}
	buf = binary.AppendVarint(buf, int64(rec.Thresholds.Challenge))
	buf = binary.AppendVarint(buf, int64(rec.Thresholds.Deny))
	buf = appendString(buf, rec.DeterminedBy)
	buf = binary.AppendUvarint(buf, uint64(len(rec.Labels)))
	for i := range rec.Labels {
		l := &rec.Labels[i]
		buf = appendString(buf, l.Label)
		buf = appendString(buf, l.Note)
		buf = appendString(buf, l.Source)
		buf = appendTime(buf, l.CreatedAt)
	}
	return buf, nil
}

func appendLimits(buf []byte, l *engine.Limits) []byte {
	buf = appendString(buf, l.Entity)
	buf = appendString(buf, l.Currency)
	buf = binary.AppendVarint(buf, l.SingleMax)
	buf = binary.AppendVarint(buf, l.DailyMax)
	buf = binary.AppendVarint(buf, l.DailyRemaining)
	buf = binary.AppendVarint(buf, l.DailySpent)
	buf = appendFloat(buf, l.Trust)
	buf = appendString(buf, l.Policy)
	buf = appendString(buf, l.Segment)
	buf = binary.AppendVarint(buf, l.BaseSingleMax)
	buf = binary.AppendVarint(buf, l.BaseDailyMax)
	buf = appendString(buf, l.BaseCurrency)
	buf = appendFloat(buf, l.Rate)
	buf = binary.AppendUvarint(buf, uint64(len(l.Adjustments)))
	for _, a := range l.Adjustments {
		buf = appendString(buf, a)
	}
	o := l.Override
	buf = appendBool(buf, o != nil)
	if o != nil {
		buf = binary.AppendVarint(buf, o.SingleMax)
		buf = binary.AppendVarint(buf, o.DailyMax)
		buf = appendString(buf, o.Reason)
		buf = appendString(buf, o.Author)
		buf = appendTime(buf, o.ExpiresAt)
	}
	return buf
}

func appendPayment(buf []byte, p *engine.Payment) ([]byte, error) {
	buf = appendString(buf, p.TransactionID)
	buf = appendTime(buf, p.OccurredAt)
	buf = binary.AppendVarint(buf, p.Amount)
	buf = appendString(buf, p.Currency)
	buf = appendString(buf, p.Account.ID)
	buf = appendString(buf, p.Account.Email)
	buf = appendTime(buf, p.Account.CreatedAt)
	buf = appendString(buf, p.Account.Country)
	buf = appendString(buf, p.Card.Fingerprint)
	buf = appendString(buf, p.Card.BIN)
	buf = appendString(buf, p.Card.Country)
	buf = appendString(buf, p.Device.ID)
	buf = appendString(buf, p.Device.IP)
	buf = appendString(buf, p.Device.IPCountry)
	buf = appendString(buf, p.Merchant.ID)
	buf = appendString(buf, p.Merchant.MCC)
	buf = appendString(buf, p.Merchant.Country)

	buf = binary.AppendUvarint(buf, uint64(len(p.Attributes)))
	var keyArray [16]string // engine.MaxAttributes is 64; most payments carry a few
	keys := keyArray[:0]
	for k := range p.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = appendString(buf, k)
		switch v := p.Attributes[k].(type) {
		case string:
			buf = append(buf, attrString)
			buf = appendString(buf, v)
		case float64:
			buf = append(buf, attrFloat)
			buf = appendFloat(buf, v)
		case bool:
			if v {
				buf = append(buf, attrTrue)
			} else {
				buf = append(buf, attrFalse)
			}
		default:
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", k, err)
			}
			buf = append(buf, attrJSON)
			buf = appendBytes(buf, raw)
		}
	}
	return buf, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

func appendFloat(buf []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
}

func appendBool(buf []byte, b bool) []byte {
	if b {
		return append(buf, 1)
	}
	return append(buf, 0)
}

func appendTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = binary.AppendVarint(buf, t.Unix())
	return binary.AppendUvarint(buf, uint64(t.Nanosecond()))
}

// recordSize returns an upper bound of the v2 encoding of rec after the
// format byte (but for attributes stored as JSON), so encodeRecord
// allocates once.
func recordSize(rec *engine.Record) int {
	const (
		maxTime   = 1 + binary.MaxVarintLen64 + 5 // nanoseconds < 2^30
		maxCount  = binary.MaxVarintLen64
		float     = 8
		jsonGuess = 32 // attributes stored as JSON never pass validation
	)
	d := &rec.Decision
	n := strSize(d.ID) + strSize(d.TransactionID) + strSize(string(d.Outcome)) + intSize(int64(d.Score)) + maxCount
	for i := range d.Reasons {
		r := &d.Reasons[i]
		n += strSize(r.Rule) + strSize(r.Code) + strSize(r.Message)
	}
	l := &d.Limits
	n += strSize(l.Entity) + strSize(l.Currency) + intSize(l.SingleMax) + intSize(l.DailyMax) +
		intSize(l.DailyRemaining) + intSize(l.DailySpent) + float + strSize(l.Policy) + strSize(l.Segment) +
		intSize(l.BaseSingleMax) + intSize(l.BaseDailyMax) + strSize(l.BaseCurrency) + float + maxCount + 1
	for _, a := range l.Adjustments {
		n += strSize(a)
	}
	if o := l.Override; o != nil {
		n += intSize(o.SingleMax) + intSize(o.DailyMax) + strSize(o.Reason) + strSize(o.Author) + maxTime
	}
	n += intSize(d.RulesetVersion) + 1 + strSize(d.DegradedCause) + maxTime

	p := &rec.Payment
	n += strSize(p.TransactionID) + maxTime + intSize(p.Amount) + strSize(p.Currency) +
		strSize(p.Account.ID) + strSize(p.Account.Email) + maxTime + strSize(p.Account.Country) +
		strSize(p.Card.Fingerprint) + strSize(p.Card.BIN) + strSize(p.Card.Country) +
		strSize(p.Device.ID) + strSize(p.Device.IP) + strSize(p.Device.IPCountry) +
		strSize(p.Merchant.ID) + strSize(p.Merchant.MCC) + strSize(p.Merchant.Country) + maxCount
	for k, v := range p.Attributes {
		n += strSize(k) + 1
		switch v := v.(type) {
		case string:
			n += strSize(v)
		case float64:
			n += float
		case bool:
		default:
			n += jsonGuess
		}
	}

	n += maxCount + len(rec.Request) + strSize(rec.RequestHash) + maxCount
	for i := range rec.Features {
		n += strSize(rec.Features[i].Name) + float + 1
	}
	n += maxCount
	for i := range rec.Rules {
		r := &rec.Rules[i]
		n += strSize(r.ID) + strSize(r.Name) + intSize(int64(r.Version)) + strSize(string(r.Mode)) +
			strSize(string(r.Action)) + intSize(int64(r.Score)) + 1 + strSize(r.Error) +
			strSize(r.Reason) + strSize(r.Message)
	}
	n += intSize(int64(rec.Thresholds.Challenge)) + intSize(int64(rec.Thresholds.Deny)) +
		strSize(rec.DeterminedBy) + maxCount
	for i := range rec.Labels {
		x := &rec.Labels[i]
		n += strSize(x.Label) + strSize(x.Note) + strSize(x.Source) + maxTime
	}
	return n
}

// strSize is the size of s as a str.
func strSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

// intSize is the size of v as a varint.
func intSize(v int64) int { return uvarintSize(uint64(v<<1) ^ uint64(v>>63)) }

func uvarintSize(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// decodeRecord decodes a stored record of either format. It never keeps a
// reference to data, so data may be a Badger value valid only in a
// callback. An unreadable record is an error wrapping errCorruptRecord
// (or, for v1, the JSON error); decodeRecord never panics, and what it
// allocates is in proportion to len(data), whatever counts data claims.
func decodeRecord(data []byte) (*engine.Record, error) {
	if len(data) < 9 {
		return nil, fmt.Errorf("decode decision: %d bytes: %w", len(data), errCorruptRecord)
	}
	switch data[8] {
	case recordV2:
		return decodeRecordV2(data)
	case '{':
		return decodeRecordV1(data)
	}
	return nil, fmt.Errorf("decode decision: unknown format %#02x: %w", data[8], errCorruptRecord)
}

func decodeRecordV2(data []byte) (*engine.Record, error) {
	// One copy of the whole value as a string: every text field is a
	// substring of it, which saves an allocation per field (about 300 in a
	// record with 50 rules). A decoded record thus keeps the encoding alive,
	// which is about the size of its strings anyway.
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
	dec.DegradedCause = d.string()
	dec.EvaluatedAt = d.time()

	d.payment(&rec.Payment)

	rec.Request = d.bytes()
	rec.RequestHash = d.string()
	if n := d.count(10); n > 0 {
		rec.Features = make([]engine.FeatureValue, n)
		for i := range rec.Features {
			f := &rec.Features[i]
			f.Name, f.Value, f.Ready = d.string(), d.float(), d.bool()
		}
	}
	rec.Rules = make([]engine.RuleResult, d.count(10))
	for i := range rec.Rules {
		r := &rec.Rules[i]
		r.ID = d.string()
		r.Name = d.string()
		r.Version = d.int()
		r.Mode = engine.Mode(d.string())
		r.Action = engine.Action(d.string())
		r.Score = d.int()
		r.Matched = d.bool()
		r.Error = d.string()
		r.Reason = d.string()
		r.Message = d.string()
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
