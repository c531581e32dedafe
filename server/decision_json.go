package server

import (
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// appendJSON appends d as Echo's JSON serializer (encoding/json's Encoder,
// HTML escaping on, a newline at the end) writes it, byte for byte, and
// reports false when it cannot: a float that is NaN or infinite, or a time
// encoding/json refuses. The caller then falls back to the serializer, so
// errors stay as they were. The decision response is written for every
// payment, and encoding it by reflection took 3% of the server's CPU under
// load; TestDecisionJSONMatchesEncoder and FuzzDecisionJSON hold the two
// encodings equal.
func (d *decisionJSON) appendJSON(b []byte) ([]byte, bool) {
	ok := true
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, d.DecisionID)
	b = append(b, `,"transaction_id":`...)
	b = appendJSONString(b, d.TransactionID)
	b = append(b, `,"decision":`...)
	b = appendJSONString(b, d.Decision)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(d.Score), 10)
	b = append(b, `,"reasons":`...)
	if d.Reasons == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Reasons {
			r := &d.Reasons[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"rule":`...)
			b = appendJSONString(b, r.Rule)
			b = append(b, `,"code":`...)
			b = appendJSONString(b, r.Code)
			b = append(b, `,"message":`...)
			b = appendJSONString(b, r.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"limits":`...)
	b, ok = d.Limits.appendJSON(b)
	if !ok {
		return b, false
	}
	b = append(b, `,"ruleset_version":`...)
	b = strconv.AppendInt(b, d.RulesetVersion, 10)
	b = append(b, `,"degraded":`...)
	b = strconv.AppendBool(b, d.Degraded)
	if d.DegradedCause != "" {
		b = append(b, `,"degraded_cause":`...)
		b = appendJSONString(b, d.DegradedCause)
	}
	b = append(b, `,"evaluated_at":`...)
	if b, ok = appendJSONTime(b, d.EvaluatedAt); !ok {
		return b, false
	}
	if d.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	if d.Review {
		b = append(b, `,"review":true`...)
	}
	return append(b, "}\n"...), true
}

func (l *limitsJSON) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, '{')
	first := true
	key := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(name, v string) {
		if v != "" {
			key(name)
			b = appendJSONString(b, v)
		}
	}
	num := func(name string, v *int64) {
		if v != nil {
			key(name)
			b = strconv.AppendInt(b, *v, 10)
		}
	}
	ok := true
	float := func(name string, v *float64) {
		if v != nil {
			key(name)
			b, ok = appendJSONFloat(b, *v)
		}
	}
	str("entity", l.Entity)
	str("currency", l.Currency)
	num("single_max", l.SingleMax)
	num("daily_max", l.DailyMax)
	num("daily_remaining", l.DailyRemaining)
	num("daily_spent", l.DailySpent)
	if float("trust", l.Trust); !ok {
		return b, false
	}
	str("policy", l.Policy)
	str("segment", l.Segment)
	num("base_single_max", l.BaseSingleMax)
	num("base_daily_max", l.BaseDailyMax)
	str("base_currency", l.BaseCurrency)
	if float("rate", l.Rate); !ok {
		return b, false
	}
	if len(l.Adjustments) > 0 {
		key("adjustments")
		b = append(b, '[')
		for i, a := range l.Adjustments {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	if o := l.Override; o != nil {
		key("override")
		b = append(b, `{"single_max":`...)
		b = strconv.AppendInt(b, o.SingleMax, 10)
		b = append(b, `,"daily_max":`...)
		b = strconv.AppendInt(b, o.DailyMax, 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, o.Reason)
		if o.Author != "" {
			b = append(b, `,"author":`...)
			b = appendJSONString(b, o.Author)
		}
		b = append(b, `,"expires_at":`...)
		if b, ok = appendJSONTime(b, o.ExpiresAt); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// appendJSONFloat is encoding/json's float64 encoding.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendJSONTime is time.Time's MarshalJSON.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false
	}
	return append(out, '"'), true
}

// appendJSONString is encoding/json's string encoding with HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// responseBufs holds encoding buffers of decision responses.
var responseBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledResponse is the largest response buffer kept for reuse.
const maxPooledResponse = 64 << 10
