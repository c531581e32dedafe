package features

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// The tests are internal because the record encoding is unexported: it is
// the storage format of Store, reached from outside only through Commit
// and Get.

// TestRecordRoundTrip encodes a record with every field set and checks it
// decodes to the same record. The fixture check fails when a field is
// added to the engine types and not to fullRecord; once it is, the round
// trip fails until the codec handles it.
func TestRecordRoundTrip(t *testing.T) {
	rec := fullRecord()
	assertNoZero(t, reflect.ValueOf(rec).Elem(), "Record")
	for _, enc := range binaryEncoders {
		t.Run(enc.name, func(t *testing.T) {
			rec := fullRecord()
			data, err := enc.encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if want := 9 + recordSize(rec); enc.name == "v3" && len(data) > want {
				t.Errorf("encoding is %d bytes, more than the %d recordSize allowed for", len(data), want)
			}
			binary.BigEndian.PutUint64(data[:8], rec.Seq)
			got, err := decodeTestRecord(data)
			if err != nil {
				t.Fatal(err)
			}

			// The decoded times are UTC without a monotonic reading;
			// otherwise the record must be identical.
			normaliseTimes(reflect.ValueOf(rec).Elem())
			if !reflect.DeepEqual(got, rec) {
				t.Errorf("round trip differs at %s", firstDiff(got, rec))
			}
		})
	}
}

// binaryEncoders are the binary record formats: v2, which stored records
// may still hold, and v3, which Store writes.
var binaryEncoders = []struct {
	name   string
	encode func(*engine.Record) ([]byte, error)
}{
	{"v2", encodeRecordV2},
	{"v3", encodeRecord},
}

// testTables holds the tables of the records encodeRecord encoded, for
// decodeTestRecord.
var testTables sync.Map // tableID -> *table

// encodeRecord is appendRecord with rec's own table.
func encodeRecord(rec *engine.Record) ([]byte, error) {
	t := newTable(rec)
	testTables.Store(t.id, t)
	return appendRecord(nil, rec, t)
}

// decodeTestRecord is decodeRecord with the tables encodeRecord made.
func decodeTestRecord(data []byte) (*engine.Record, error) {
	return decodeRecord(data, func(id tableID) (*table, error) {
		if t, ok := testTables.Load(id); ok {
			return t.(*table), nil
		}
		return nil, fmt.Errorf("table %x: %w: %w", id, errMissingTable, errCorruptRecord)
	})
}

// encodeRecordV2 is the v2 encoding, as Store wrote it before v3: the
// reference for the compatibility tests and the benchmarks.
func encodeRecordV2(rec *engine.Record) ([]byte, error) {
	buf, err := appendHead(nil, rec, recordV2)
	if err != nil {
		return nil, err
	}
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
	return appendTail(buf, rec), nil
}

// TestRecordRoundTripEdges covers values the full fixture does not: zero
// and empty values, times outside the range of UnixNano, extreme numbers,
// and a request body that is not JSON (kept as received; v1 dropped it).
func TestRecordRoundTripEdges(t *testing.T) {
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	early := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	tests := []struct {
		name string
		rec  *engine.Record
	}{
		{"zero", &engine.Record{}},
		{"far times", &engine.Record{
			Decision: engine.Decision{EvaluatedAt: far, Limits: engine.Limits{Override: &engine.LimitOverride{ExpiresAt: far}}},
			Payment:  engine.Payment{OccurredAt: early, Account: engine.Account{CreatedAt: time.Unix(-1, 0)}},
			Labels:   []engine.Label{{Label: "fraud"}},
		}},
		{"extremes", &engine.Record{
			Decision: engine.Decision{Score: math.MinInt, RulesetVersion: math.MaxInt64, Limits: engine.Limits{
				SingleMax: math.MinInt64, DailyMax: -1, Trust: math.Inf(1), Rate: math.SmallestNonzeroFloat64,
			}},
			Payment:  engine.Payment{Amount: math.MaxInt64, Attributes: map[string]any{"": "", "b": false, "f": -0.5}},
			Features: []engine.FeatureValue{{Value: math.MaxFloat64}},
			Rules:    []engine.RuleResult{{RuleInfo: &engine.RuleInfo{Version: math.MaxInt, Score: -7}}},
		}},
		{"text", &engine.Record{
			Decision:    engine.Decision{ID: strings.Repeat("é", 200), Reasons: []engine.Reason{{Message: "\x00\xff"}}},
			Request:     []byte("not json \x00 <&>"),
			RequestHash: "\n",
		}},
	}
	for _, tc := range tests {
		for _, enc := range binaryEncoders {
			t.Run(tc.name+"/"+enc.name, func(t *testing.T) {
				data, err := enc.encode(tc.rec)
				if err != nil {
					t.Fatal(err)
				}
				if want := 9 + recordSize(tc.rec); enc.name == "v3" && len(data) > want {
					t.Errorf("encoding is %d bytes, more than the %d recordSize allowed for", len(data), want)
				}
				got, err := decodeTestRecord(data)
				if err != nil {
					t.Fatal(err)
				}
				if d := firstDiff(got, tc.rec); d != "" {
					t.Errorf("round trip differs at %s", d)
				}
				if got.Rules == nil {
					t.Error("Rules decoded as nil, want an empty slice as v1 gave")
				}
			})
		}
	}
}

// TestRecordAttributes pins how attribute values of each type come back:
// the three valid types as they are, anything else as v1 gave it (through
// JSON), and a value JSON cannot hold as an error.
func TestRecordAttributes(t *testing.T) {
	tests := []struct {
		name    string
		in, out any
	}{
		{"string", "web", "web"},
		{"float", 2.5, 2.5},
		{"nan", math.NaN(), math.NaN()}, // v1 could not store this
		{"true", true, true},
		{"false", false, false},
		{"int", 3, 3.0},
		{"nil", nil, nil},
		{"list", []string{"a"}, []any{"a"}},
		{"object", map[string]int{"n": 1}, map[string]any{"n": 1.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &engine.Record{Payment: engine.Payment{Attributes: map[string]any{"k": tc.in}}}
			data, err := encodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeTestRecord(data)
			if err != nil {
				t.Fatal(err)
			}
			want := &engine.Record{Payment: engine.Payment{Attributes: map[string]any{"k": tc.out}}}
			if d := firstDiff(got, want); d != "" {
				t.Errorf("differs at %s", d)
			}
		})
	}

	rec := &engine.Record{Decision: engine.Decision{ID: "d1"}, Payment: engine.Payment{Attributes: map[string]any{"c": make(chan int)}}}
	_, err := encodeRecord(rec)
	if want := `encode decision d1: attribute "c": json: unsupported type: chan int`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestRecordDeterministic checks that equal records encode to equal bytes
// whatever the map order.
func TestRecordDeterministic(t *testing.T) {
	attrs := map[string]any{}
	for i := range 40 {
		attrs[fmt.Sprintf("a%02d", i)] = float64(i)
	}
	rec := &engine.Record{Payment: engine.Payment{Attributes: attrs}}
	first, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, first) {
			t.Fatal("two encodings of one record differ")
		}
	}
}

// v1Record is a record as encodeRecord wrote it before v2 (after an
// 8-byte sequence number of 42), captured from that code for
// v1RecordFixture.
const v1Record = `{"id":"dec_01","tx":"tx_01","o":"challenge","s":35,"r":[{"Rule":"high_amount","Code":"amount","Message":"amount is high"}],"l":{"Entity":"account:acc_42","Currency":"EUR","SingleMax":50000,"DailyMax":200000,"DailyRemaining":150000,"DailySpent":50000,"Trust":1.25,"Policy":"default","Segment":"new","BaseSingleMax":40000,"BaseDailyMax":160000,"BaseCurrency":"USD","Rate":0.92,"Adjustments":["trust 1.25: 30 days clean"],"Override":{"SingleMax":60000,"DailyMax":250000,"Reason":"vip","Author":"ana","ExpiresAt":"2025-04-13T15:09:26.535897932+02:00"}},"v":7,"dg":true,"dc":"features: timeout","at":"2025-03-14T15:09:26.535897932+02:00","p":{"TransactionID":"tx_01","OccurredAt":"2025-03-14T15:09:25.535897932+02:00","Amount":12345,"Currency":"EUR","Account":{"ID":"acc_42","Email":"a@example.com","CreatedAt":"2025-03-12T15:09:26.535897932+02:00","Country":"FR"},"Card":{"Fingerprint":"fp_1","BIN":"424242","Country":"DE"},"Device":{"ID":"dev_1","IP":"203.0.113.7","IPCountry":"NL"},"Merchant":{"ID":"m_1","MCC":"5999","Country":"FR"},"Attributes":{"channel":"web","items":3,"returning":true}},"req":{"transaction_id":"tx_01","amount":12345},"h":"sha256:abc","f":[{"Name":"card_tx_1h","Value":2,"Ready":true},{"Name":"ip_accounts_24h","Value":1.5,"Ready":false}],"ru":[{"id":"high_amount","n":"High amount","v":3,"m":"active","a":"score","s":35,"x":true,"r":"amount","msg":"amount is high"},{"id":"bad_bin","m":"shadow","a":"deny","e":"boom"}],"th":{"Challenge":30,"Deny":80},"by":"threshold:challenge","lb":[{"Label":"legit","Note":"ok","Source":"gateway","CreatedAt":"2025-03-14T16:09:26.535897932+02:00"}]}`

// TestDecodeRecordV1 checks that records stored before v2 still read.
func TestDecodeRecordV1(t *testing.T) {
	t.Run("stored", func(t *testing.T) {
		got, err := decodeTestRecord(append(binary.BigEndian.AppendUint64(nil, 42), v1Record...))
		if err != nil {
			t.Fatal(err)
		}
		want := v1RecordFixture()
		want.Request = []byte(`{"transaction_id":"tx_01","amount":12345}`) // v1 compacted it
		if d := firstDiff(got, want); d != "" {
			t.Errorf("differs at %s", d)
		}
	})
	// The v1 encoder, kept here, must give what v2 gives for any record v1
	// could store.
	t.Run("full", func(t *testing.T) {
		rec := fullRecord()
		v1, err := encodeRecordV1(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeTestRecord(v1)
		if err != nil {
			t.Fatal(err)
		}
		rec.Seq = 0
		// v1 compacted the body and escaped HTML in it; v2 keeps it as
		// received.
		if rec.Request, err = json.Marshal(json.RawMessage(rec.Request)); err != nil {
			t.Fatal(err)
		}
		if d := firstDiff(got, rec); d != "" {
			t.Errorf("differs at %s", d)
		}
	})
}

// TestDecodeRecordCorrupt checks that no truncation or damage of a record
// panics or decodes, and pins the errors.
func TestDecodeRecordCorrupt(t *testing.T) {
	good, err := encodeRecord(fullRecord())
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := decodeTestRecord(good[:n]); !errors.Is(err, errCorruptRecord) {
			t.Fatalf("decode of the first %d of %d bytes: err = %v, want errCorruptRecord", n, len(good), err)
		}
	}
	seq := make([]byte, 8)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"short", seq[:5], "decode decision: 5 bytes: corrupt decision record"},
		{"no format", seq, "decode decision: 8 bytes: corrupt decision record"},
		{"unknown format", append(seq, 7), "decode decision: unknown format 0x07: corrupt decision record"},
		{"empty v2", append(seq, recordV2), "decode decision at byte 9: corrupt decision record"},
		{"trailing byte", append(bytes.Clone(good), 0), fmt.Sprintf("decode decision at byte %d: corrupt decision record", len(good))},
		{"string past end", append(seq, recordV2, 0x80, 0x01), "decode decision at byte 11: corrupt decision record"},
		{"huge count", append(seq, recordV2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f), "decode decision at byte 18: corrupt decision record"},
		{"varint overflow", append(seq, recordV2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "decode decision at byte 12: corrupt decision record"},
		{"v1 not json", append(seq, '{'), "decode decision: unexpected end of JSON input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTestRecord(tc.data)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
		})
	}

	// Damage a byte of each kind in a small record: the bool of Degraded,
	// a time tag, a nanosecond count, an attribute tag.
	rec := &engine.Record{
		Decision: engine.Decision{Degraded: true, EvaluatedAt: time.Unix(1, 5)},
		Payment:  engine.Payment{Attributes: map[string]any{"k": true}},
	}
	small, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		from, to []byte
	}{
		{"bool", []byte{1, 0, 1, 2, 5}, []byte{2, 0, 1, 2, 5}},
		{"time tag", []byte{1, 0, 1, 2, 5}, []byte{1, 0, 2, 2, 5}},
		{"nanoseconds", []byte{1, 0, 1, 2, 5}, []byte{1, 0, 1, 2, 0x80, 0x94, 0xeb, 0xdc, 0x03}},
		{"attribute tag", []byte{1, 'k', attrTrue}, []byte{1, 'k', 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if bytes.Count(small, c.from) != 1 {
				t.Fatalf("%x not once in %x", c.from, small)
			}
			bad := bytes.Replace(small, c.from, c.to, 1)
			if _, err := decodeTestRecord(bad); !errors.Is(err, errCorruptRecord) {
				t.Errorf("err = %v, want errCorruptRecord", err)
			}
		})
	}
}

// TestDecodeRecordV3Corrupt pins the errors of a v3 record that does not
// fit its table.
func TestDecodeRecordV3Corrupt(t *testing.T) {
	rec := &engine.Record{
		Features: []engine.FeatureValue{{Name: "n", Value: 1}},
		Rules:    []engine.RuleResult{{RuleInfo: &engine.RuleInfo{ID: "a"}, Matched: true}, {RuleInfo: &engine.RuleInfo{ID: "b"}, Error: "boom"}},
	}
	good, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	tab := newTable(rec)
	at := bytes.Index(good, tab.id[:]) // the table id, then the results
	if at < 0 {
		t.Fatal("table id not in the record")
	}
	results := at + len(tab.id)
	damage := func(i int, b ...byte) []byte {
		bad := bytes.Clone(good)
		return append(append(bad[:i:i], b...), good[i+1:]...)
	}
	unknown := bytes.Clone(good)
	unknown[at] ^= 0xff
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"unknown table", unknown, fmt.Sprintf("decode decision: table %x: record table not found: corrupt decision record", unknown[at:results])},
		{"too few features", damage(results, 0), fmt.Sprintf("decode decision at byte %d: corrupt decision record", results+1)},
		{"unknown flag", damage(results+11, 4), fmt.Sprintf("decode decision at byte %d: corrupt decision record", results+12)},
		{"empty error", damage(results+13, 0), fmt.Sprintf("decode decision at byte %d: corrupt decision record", results+14)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTestRecord(tc.data)
			if err == nil || err.Error() != tc.want || !errors.Is(err, errCorruptRecord) {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
		})
	}
	if got, err := decodeTestRecord(good); err != nil || !got.Rules[0].Matched || got.Rules[1].Error != "boom" {
		t.Errorf("undamaged record: %+v, %v", got, err)
	}
}

// TestTableRoundTrip checks that a stored table decodes to the one made,
// and that a table whose bytes do not match its id is refused.
func TestTableRoundTrip(t *testing.T) {
	rec := fullRecord()
	tab := newTable(rec)
	if !tab.matches(rec) {
		t.Fatal("a table does not match its own record")
	}
	got, err := decodeTable(tab.id, bytes.Clone(tab.enc))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.rules, tab.rules) || !reflect.DeepEqual(got.features, tab.features) {
		t.Errorf("decoded table differs: %+v, want %+v", got, tab)
	}
	other := fullRecord()
	other.Rules[0].Message += "!"
	if tab.matches(other) {
		t.Error("a table matches a record whose rule message differs")
	}
	if newTable(other).id == tab.id {
		t.Error("two different tables share an id")
	}
	bad := bytes.Clone(tab.enc)
	bad[len(bad)-1] ^= 1
	if _, err := decodeTable(tab.id, bad); !errors.Is(err, errCorruptRecord) {
		t.Errorf("damaged table: err = %v, want errCorruptRecord", err)
	}
}

// TestRecordV3Size checks the point of v3: a record with 50 rules is less
// than a third of its v2 size.
func TestRecordV3Size(t *testing.T) {
	rec := realisticRecord()
	v2, err := encodeRecordV2(rec)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if 3*len(v3) >= len(v2) {
		t.Errorf("v3 record is %d bytes, v2 %d: want less than a third", len(v3), len(v2))
	}
}

// FuzzDecodeRecord checks that decodeRecord never panics, and that what it
// decodes encodes and decodes again to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, enc := range binaryEncoders {
		data, err := enc.encode(v1RecordFixture())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add(append(binary.BigEndian.AppendUint64(nil, 42), v1Record...))
	f.Add(append(make([]byte, 8), recordV2))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeTestRecord(data)
		if err != nil {
			if len(data) > 8 && data[8] != '{' && !errors.Is(err, errCorruptRecord) {
				t.Fatalf("binary record error does not wrap errCorruptRecord: %v", err)
			}
			return
		}
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		binary.BigEndian.PutUint64(again[:8], rec.Seq)
		got, err := decodeTestRecord(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := firstDiff(got, rec); d != "" {
			t.Fatalf("re-encoded record differs at %s", d)
		}
	})
}

// BenchmarkEncodeRecord is the record encoding on the decision path, v3
// against the formats before it: v1 (JSON) and v2 (binary, every field).
// Run with -benchmem; bytes/record is what the value log writes.
func BenchmarkEncodeRecord(b *testing.B) {
	rec := realisticRecord()
	ts := newTables() // as Store.Commit finds the table: matched to the last one
	v3 := func(rec *engine.Record) ([]byte, error) { return appendRecord(nil, rec, ts.of(rec)) }
	for _, tc := range []struct {
		name   string
		encode func(*engine.Record) ([]byte, error)
	}{
		{"v1-json", encodeRecordV1},
		{"v2-binary", encodeRecordV2},
		{"v3-table", v3},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var data []byte
			for b.Loop() {
				var err error
				if data, err = tc.encode(rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes/record")
			got, err := decodeRecord(data, func(id tableID) (*table, error) { t, _ := ts.cache.Get(id); return t, nil })
			if err != nil {
				b.Fatal(err)
			}
			if len(got.Rules) != 50 {
				b.Fatalf("decoded %d rules, want 50", len(got.Rules))
			}
		})
	}
}

// BenchmarkDecodeRecord is the record decoding of explanations and
// backtest replays, for a record of each format.
func BenchmarkDecodeRecord(b *testing.B) {
	rec := realisticRecord()
	for _, tc := range []struct {
		name   string
		encode func(*engine.Record) ([]byte, error)
	}{
		{"v1-json", encodeRecordV1},
		{"v2-binary", encodeRecordV2},
		{"v3-table", encodeRecord},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data, err := tc.encode(rec)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var got *engine.Record
			for b.Loop() {
				if got, err = decodeTestRecord(data); err != nil {
					b.Fatal(err)
				}
			}
			if len(got.Rules) != 50 || got.Rules[49].Message != rec.Rules[49].Message || got.Limits.DailySpent != rec.Limits.DailySpent {
				b.Fatal("decoded record differs")
			}
		})
	}
}

// encodeRecordV1 is encodeRecord as it was before v2: the reference for the
// compatibility test and the benchmarks.
func encodeRecordV1(rec *engine.Record) ([]byte, error) {
	s := storedRecord{
		ID: rec.ID, TransactionID: rec.TransactionID, Outcome: rec.Outcome, Score: rec.Score,
		Reasons: rec.Reasons, RulesetVersion: rec.RulesetVersion, Degraded: rec.Degraded,
		DegradedCause: string(rec.DegradedCause), EvaluatedAt: rec.EvaluatedAt, Payment: rec.Payment,
		RequestHash: rec.RequestHash, Features: rec.Features, Thresholds: rec.Thresholds,
		DeterminedBy: rec.DeterminedBy, Labels: rec.Labels,
	}
	if json.Valid(rec.Request) {
		s.Request = rec.Request
	}
	if rec.Limits.Entity != "" {
		s.Limits = &rec.Limits
	}
	s.Rules = make([]storedRule, len(rec.Rules))
	for i, r := range rec.Rules {
		s.Rules[i] = storedRule{
			ID: r.ID, Name: r.Name, Version: r.Version, Mode: r.Mode, Action: r.Action, Score: r.Score,
			Matched: r.Matched, Error: r.Error, Reason: r.Reason, Message: r.Message,
		}
	}
	body, err := json.Marshal(&s)
	if err != nil {
		return nil, fmt.Errorf("encode decision %s: %w", rec.ID, err)
	}
	out := make([]byte, 8, 8+len(body))
	return append(out, body...), nil
}

// fullRecord returns a record with every field, recursively, set to a
// non-zero value (TestRecordRoundTrip checks that it is), with times in a
// zone other than UTC and one carrying a monotonic reading.
func fullRecord() *engine.Record {
	zone := time.FixedZone("CET", 3600)
	at := time.Date(2025, 6, 1, 12, 30, 15, 123456789, zone)
	return &engine.Record{
		Decision: engine.Decision{
			ID: "dec_full", TransactionID: "tx_full", Outcome: engine.Deny, Score: 120,
			Reasons: []engine.Reason{
				{Rule: "velocity", Code: "too_many", Message: "too many payments"},
				{Rule: "blocklist", Code: "blocked", Message: "card blocked"},
			},
			Limits: engine.Limits{
				Entity: "account:acc_7", Currency: "GBP", SingleMax: 1_000, DailyMax: 5_000, DailyRemaining: 4_000,
				DailySpent: 1_000, Trust: 0.5, Policy: "retail", Segment: "risky", BaseSingleMax: 2_000,
				BaseDailyMax: 10_000, BaseCurrency: "EUR", Rate: 0.85,
				Adjustments: []string{"trust 0.5: chargeback", "clamped to floor"},
				Override: &engine.LimitOverride{
					SingleMax: 1_500, DailyMax: 6_000, Reason: "ticket 12", Author: "bob", ExpiresAt: at.Add(24 * time.Hour),
				},
			},
			RulesetVersion: 99, Degraded: true, DegradedCause: engine.CauseLimitsUnavailable, EvaluatedAt: time.Now(),
		},
		Seq: 1 << 40,
		Payment: engine.Payment{
			TransactionID: "tx_full", OccurredAt: at, Amount: -250, Currency: "GBP",
			Account:    engine.Account{ID: "acc_7", Email: "x@example.org", CreatedAt: at.AddDate(-1, 0, 0), Country: "GB"},
			Card:       engine.Card{Fingerprint: "fp_9", BIN: "555555", Country: "US"},
			Device:     engine.Device{ID: "dev_9", IP: "2001:db8::1", IPCountry: "IE"},
			Merchant:   engine.Merchant{ID: "m_9", MCC: "7995", Country: "MT"},
			Attributes: map[string]any{"channel": "app", "basket": 4.0, "first": true, "guest": false, "ünï": "ĉödé"},
		},
		Request:     []byte(`{"transaction_id":"tx_full","amount":-250,"note":"<b>&</b>"}`),
		RequestHash: "sha256:full",
		Features: []engine.FeatureValue{
			{Name: "card_tx_1h", Value: 7, Ready: true},
			{Name: "ip_amount_24h", Value: 1234.5, Ready: true},
		},
		Rules: []engine.RuleResult{
			{RuleInfo: &engine.RuleInfo{ID: "velocity", Name: "Velocity", Version: 4, Mode: engine.ModeActive, Action: engine.ActionDeny, Score: 100, Reason: "too_many", Message: "too many payments"}, Matched: true, Error: "e1"},
			{RuleInfo: &engine.RuleInfo{ID: "blocklist", Name: "Blocklist", Version: 1, Mode: engine.ModeShadow, Action: engine.ActionChallenge, Score: -20, Reason: "blocked", Message: "card blocked"}, Matched: true, Error: "e2"},
		},
		Thresholds:   engine.Thresholds{Challenge: 50, Deny: 100},
		DeterminedBy: "rule:velocity",
		Labels: []engine.Label{
			{Label: engine.LabelFraud, Note: "confirmed", Source: "analyst", CreatedAt: at.Add(time.Hour)},
			{Label: engine.LabelChargeback, Note: "cb 1", Source: "gateway", CreatedAt: at.Add(48 * time.Hour)},
		},
	}
}

// v1RecordFixture is the record v1Record was captured from.
func v1RecordFixture() *engine.Record {
	zone := time.FixedZone("", 2*3600)
	at := time.Date(2025, 3, 14, 15, 9, 26, 535897932, zone)
	return &engine.Record{
		Decision: engine.Decision{
			ID: "dec_01", TransactionID: "tx_01", Outcome: engine.Challenge, Score: 35,
			Reasons: []engine.Reason{{Rule: "high_amount", Code: "amount", Message: "amount is high"}},
			Limits: engine.Limits{
				Entity: "account:acc_42", Currency: "EUR", SingleMax: 50_000, DailyMax: 200_000,
				DailyRemaining: 150_000, DailySpent: 50_000, Trust: 1.25, Policy: "default", Segment: "new",
				BaseSingleMax: 40_000, BaseDailyMax: 160_000, BaseCurrency: "USD", Rate: 0.92,
				Adjustments: []string{"trust 1.25: 30 days clean"},
				Override: &engine.LimitOverride{
					SingleMax: 60_000, DailyMax: 250_000, Reason: "vip", Author: "ana", ExpiresAt: at.Add(720 * time.Hour),
				},
			},
			// Stored as "features: timeout", the error text of the release
			// that wrote v1; read as its code.
			RulesetVersion: 7, Degraded: true, DegradedCause: engine.CauseFeatureStoreUnavailable, EvaluatedAt: at,
		},
		Seq: 42,
		Payment: engine.Payment{
			TransactionID: "tx_01", OccurredAt: at.Add(-time.Second), Amount: 12_345, Currency: "EUR",
			Account:    engine.Account{ID: "acc_42", Email: "a@example.com", CreatedAt: at.Add(-48 * time.Hour), Country: "FR"},
			Card:       engine.Card{Fingerprint: "fp_1", BIN: "424242", Country: "DE"},
			Device:     engine.Device{ID: "dev_1", IP: "203.0.113.7", IPCountry: "NL"},
			Merchant:   engine.Merchant{ID: "m_1", MCC: "5999", Country: "FR"},
			Attributes: map[string]any{"channel": "web", "items": 3.0, "returning": true},
		},
		Request:     []byte(`{"transaction_id": "tx_01", "amount": 12345}`),
		RequestHash: "sha256:abc",
		Features:    []engine.FeatureValue{{Name: "card_tx_1h", Value: 2, Ready: true}, {Name: "ip_accounts_24h", Value: 1.5}},
		Rules: []engine.RuleResult{
			{RuleInfo: &engine.RuleInfo{ID: "high_amount", Name: "High amount", Version: 3, Mode: engine.ModeActive, Action: engine.ActionScore, Score: 35, Reason: "amount", Message: "amount is high"}, Matched: true},
			{RuleInfo: &engine.RuleInfo{ID: "bad_bin", Mode: engine.ModeShadow, Action: engine.ActionDeny}, Error: "boom"},
		},
		Thresholds:   engine.Thresholds{Challenge: 30, Deny: 80},
		DeterminedBy: "threshold:challenge",
		Labels:       []engine.Label{{Label: engine.LabelLegit, Note: "ok", Source: "gateway", CreatedAt: at.Add(time.Hour)}},
	}
}

// realisticRecord is a decision as the server records it: 50 rules, 12
// features, a request body of about 600 bytes, limits filled in.
func realisticRecord() *engine.Record {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body := `{"transaction_id":"tx_8f3a2c1d9e","amount":12999,"currency":"EUR","occurred_at":"2025-06-01T11:59:58.123Z",` +
		`"account":{"id":"acc_1029384756","email":"jane.doe@example.com","created_at":"2023-02-11T08:15:00Z","country":"FR"},` +
		`"card":{"fingerprint":"fp_Zk3mQ9xW2vL8","bin":"497010","country":"FR"},` +
		`"device":{"id":"dev_7c1e0b5a-2f44-4b8e-9d1a-3e6f0c2b7a91","ip":"203.0.113.42","ip_country":"FR"},` +
		`"merchant":{"id":"m_shop_4410","mcc":"5732","country":"FR"},` +
		`"attributes":{"channel":"web","basket_items":3,"returning_customer":true,"shipping_method":"express",` +
		`"promo_code":"SUMMER25","three_ds_version":"2.2.0","user_agent":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/126.0"}}`
	rec := &engine.Record{
		Decision: engine.Decision{
			ID: "dec_01HZX4T9V6K2M8N3P5Q7R9S1T3", TransactionID: "tx_8f3a2c1d9e", Outcome: engine.Challenge, Score: 45,
			Reasons: []engine.Reason{
				{Rule: "rule_07", Code: "velocity_card", Message: "Too many payments with this card"},
				{Rule: "rule_21", Code: "new_device", Message: "Payment from a new device"},
			},
			Limits: engine.Limits{
				Entity: "account:acc_1029384756", Currency: "EUR", SingleMax: 150_000, DailyMax: 500_000,
				DailyRemaining: 420_000, DailySpent: 80_000, Trust: 1.1, Policy: "retail-default", Segment: "established",
				BaseSingleMax: 120_000, BaseDailyMax: 450_000, BaseCurrency: "USD", Rate: 0.92,
				Adjustments: []string{"trust 1.10: 90 days without chargeback"},
			},
			RulesetVersion: 1_717_243_200, EvaluatedAt: now,
		},
		Payment: engine.Payment{
			TransactionID: "tx_8f3a2c1d9e", OccurredAt: now.Add(-2 * time.Second), Amount: 12_999, Currency: "EUR",
			Account:  engine.Account{ID: "acc_1029384756", Email: "jane.doe@example.com", CreatedAt: now.AddDate(-2, 0, 0), Country: "FR"},
			Card:     engine.Card{Fingerprint: "fp_Zk3mQ9xW2vL8", BIN: "497010", Country: "FR"},
			Device:   engine.Device{ID: "dev_7c1e0b5a-2f44-4b8e-9d1a-3e6f0c2b7a91", IP: "203.0.113.42", IPCountry: "FR"},
			Merchant: engine.Merchant{ID: "m_shop_4410", MCC: "5732", Country: "FR"},
			Attributes: map[string]any{
				"channel": "web", "basket_items": 3.0, "returning_customer": true, "shipping_method": "express",
				"promo_code": "SUMMER25", "three_ds_version": "2.2.0",
			},
		},
		Request:      []byte(body),
		RequestHash:  "b3f1c0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1",
		Thresholds:   engine.Thresholds{Challenge: 40, Deny: 80},
		DeterminedBy: "threshold:challenge",
	}
	for i := range 12 {
		rec.Features = append(rec.Features, engine.FeatureValue{
			Name: fmt.Sprintf("feature_%02d_count_24h", i), Value: float64(i*i) + 0.5, Ready: i != 5,
		})
	}
	for i := range 50 {
		r := engine.RuleResult{RuleInfo: &engine.RuleInfo{
			ID: fmt.Sprintf("rule_%02d", i), Name: fmt.Sprintf("Rule number %d for checking things", i), Version: 1 + i%4,
			Mode: engine.ModeActive, Action: engine.ActionScore, Score: 5 + i%20,
			Reason: fmt.Sprintf("reason_code_%02d", i), Message: fmt.Sprintf("Customer-facing message for rule %d", i),
		}}
		if i%10 == 3 {
			r.Mode = engine.ModeShadow
		}
		if i == 7 || i == 21 {
			r.Matched = true
		}
		if i == 33 {
			r.Error = "runtime error: feature unavailable"
		}
		rec.Rules = append(rec.Rules, r)
	}
	return rec
}

var timeType = reflect.TypeFor[time.Time]()

// assertNoZero reports every field under v, recursively, that holds its
// zero value or an empty slice or map.
func assertNoZero(tb testing.TB, v reflect.Value, path string) {
	tb.Helper()
	if v.Type() == timeType {
		if v.Interface().(time.Time).IsZero() {
			tb.Errorf("%s is zero in the fixture", path)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				assertNoZero(tb, v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			tb.Errorf("%s is nil in the fixture", path)
			return
		}
		assertNoZero(tb, v.Elem(), path)
	case reflect.Slice:
		if v.Len() == 0 {
			tb.Errorf("%s is empty in the fixture", path)
		}
		for i := range v.Len() {
			assertNoZero(tb, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			tb.Errorf("%s is empty in the fixture", path)
		}
	default:
		if v.IsZero() {
			tb.Errorf("%s is zero in the fixture", path)
		}
	}
}

// normaliseTimes sets every time under v, which must be addressable, to
// what the codec gives back: UTC, without a monotonic reading.
func normaliseTimes(v reflect.Value) {
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Round(0).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normaliseTimes(v.Field(i))
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			normaliseTimes(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			normaliseTimes(v.Index(i))
		}
	}
}

// firstDiff returns where got and want first differ, or "" when they are
// equal under the codec's contract: times compare with Equal, an empty
// slice or map equals nil, floats compare by bits (so NaN equals NaN).
func firstDiff(got, want *engine.Record) string {
	return diffValues("Record", reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
}

func diffValues(path string, got, want reflect.Value) string {
	if got.Type() != want.Type() {
		return fmt.Sprintf("%s: got type %s, want %s", path, got.Type(), want.Type())
	}
	if got.Type() == timeType {
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			return fmt.Sprintf("%s: got %v, want %v", path, g, w)
		}
		return ""
	}
	switch got.Kind() {
	case reflect.Struct:
		for i := range got.NumField() {
			if d := diffValues(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i)); d != "" {
				return d
			}
		}
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return fmt.Sprintf("%s: got nil %t, want nil %t", path, got.IsNil(), want.IsNil())
			}
			return ""
		}
		return diffValues(path, got.Elem(), want.Elem())
	case reflect.Slice:
		if got.Len() != want.Len() {
			return fmt.Sprintf("%s: got %d items, want %d", path, got.Len(), want.Len())
		}
		for i := range got.Len() {
			if d := diffValues(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if got.Len() != want.Len() {
			return fmt.Sprintf("%s: got %d entries, want %d", path, got.Len(), want.Len())
		}
		for it := want.MapRange(); it.Next(); {
			g := got.MapIndex(it.Key())
			if !g.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, it.Key())
			}
			if d := diffValues(fmt.Sprintf("%s[%v]", path, it.Key()), g, it.Value()); d != "" {
				return d
			}
		}
	case reflect.Float64:
		if math.Float64bits(got.Float()) != math.Float64bits(want.Float()) {
			return fmt.Sprintf("%s: got %v, want %v", path, got.Float(), want.Float())
		}
	default:
		if !got.Equal(want) {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
	}
	return ""
}
