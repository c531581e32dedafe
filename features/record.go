package features

import (
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
// followed by one of three encodings, told apart by the byte after it:
//
//	'{'   v1: storedRecord as JSON. No longer written, still read, so stored
//	      history stays readable until it expires.
//	0x02  v2: binary, every field in the record. No longer written, still
//	      read. It was several times faster to encode than JSON and over
//	      twenty times faster to decode.
//	0x03  v3: v2 without what repeats from one decision to the next: the
//	      fixed fields of the rule results and the feature names live in a
//	      table (table.go) the record names by id. With 50 rules a record
//	      is about a fifth of its v2 size (BenchmarkEncodeRecord reports
//	      bytes/record), which is what the value log writes per decision.
//	      Written by appendRecord.
//
// v2 and v3, after the format byte, in this order; str is a uvarint length
// and the bytes, int a varint, float 8 bytes little-endian IEEE 754, bool
// one byte (0 or 1), time one byte (0: the zero time, nothing follows; 1:
// varint Unix seconds, uvarint nanoseconds) and list a uvarint count then
// the items:
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
//	request   str Request, str RequestHash
//	v2 only   list Features (str Name, float Value, bool Ready),
//	          list Rules (str ID, str Name, int Version, str Mode,
//	          str Action, int Score, bool Matched, str Error, str Reason,
//	          str Message)
//	v3 only   16 bytes table id,
//	          list Features in the table's order (float Value, bool Ready),
//	          list Rules in the table's order (byte flags: ruleMatched,
//	          ruleFailed; then str Error if ruleFailed)
//	tail      int Thresholds.Challenge, int Thresholds.Deny,
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
const (
	recordV2 = 0x02
	recordV3 = 0x03
)

// Attribute value tags. engine.Payment.Validate admits only string, float64
// and bool; any other value (a payment that did not go through it) is stored
// as JSON and comes back as json.Unmarshal gives it into an any, which is
// what v1 did: an int comes back as a float64, nil as nil. A value JSON
// cannot encode makes appendRecord fail, as it did in v1.
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

// appendRecord returns the v3 encoding of rec, whose table is t, in buf's
// spare capacity (buf's contents are dropped), with a zero sequence number
// in front for the committer to fill in. The encoding is deterministic.
func appendRecord(buf []byte, rec *engine.Record, t *table) ([]byte, error) {
	if n := 9 + recordSize(rec); cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	buf, err := appendHead(buf, rec, recordV3)
	if err != nil {
		return nil, err
	}
	buf = append(buf, t.id[:]...)
	buf = binary.AppendUvarint(buf, uint64(len(rec.Features)))
	for i := range rec.Features {
		f := &rec.Features[i]
		buf = appendFloat(buf, f.Value)
		buf = appendBool(buf, f.Ready)
	}
	buf = binary.AppendUvarint(buf, uint64(len(rec.Rules)))
	for i := range rec.Rules {
		r := &rec.Rules[i]
		var flags byte
		if r.Matched {
			flags |= ruleMatched
		}
		if r.Error != "" {
			flags |= ruleFailed
		}
		buf = append(buf, flags)
		if r.Error != "" {
			buf = appendString(buf, r.Error)
		}
	}
	return appendTail(buf, rec), nil
}

// Flags of a rule result in a v3 record.
const (
	ruleMatched = 1 << 0
	ruleFailed  = 1 << 1 // str Error follows
)

// appendHead appends what every binary format starts with: the zero
// sequence number, the format byte, then decision, payment, Request and
// RequestHash.
func appendHead(buf []byte, rec *engine.Record, format byte) ([]byte, error) {
	buf = append(buf[:0], 0, 0, 0, 0, 0, 0, 0, 0, format)

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
	buf = appendString(buf, string(d.DegradedCause))
	buf = appendTime(buf, d.EvaluatedAt)

	buf, err := appendPayment(buf, &rec.Payment)
	if err != nil {
		return nil, fmt.Errorf("encode decision %s: %w", rec.ID, err)
	}

	buf = appendBytes(buf, rec.Request)
	return appendString(buf, rec.RequestHash), nil
}

// appendTail appends what every binary format ends with: thresholds,
// DeterminedBy and labels.
func appendTail(buf []byte, rec *engine.Record) []byte {
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
	return buf
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

// recordSize returns an upper bound of the v3 encoding of rec after the
// format byte (but for attributes stored as JSON), so appendRecord
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
	n += intSize(d.RulesetVersion) + 1 + strSize(string(d.DegradedCause)) + maxTime

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

	n += maxCount + len(rec.Request) + strSize(rec.RequestHash) + len(tableID{}) +
		maxCount + len(rec.Features)*(float+1) + maxCount
	for i := range rec.Rules {
		if e := rec.Rules[i].Error; e != "" {
			n += 1 + strSize(e)
		} else {
			n++
		}
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
