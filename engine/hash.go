package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
)

// ContentHash identifies the content of a payment request, independent of
// JSON formatting and key order, so a retried request can be told apart
// from a different request reusing a transaction id. It must be computed
// before defaults (such as OccurredAt) are filled in.
//
// The hashed text is built in one buffer and hashed once: the same bytes
// as when each part was written to the hash in turn, so the hashes of
// stored records still match.
func (p *Payment) ContentHash() string {
	var stack [1024]byte
	buf := stack[:0]
	str := func(s string) {
		buf = strconv.AppendInt(buf, int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
	}
	tm := func(t time.Time) {
		if t.IsZero() {
			str("")
			return
		}
		str(t.UTC().Format(time.RFC3339Nano))
	}
	str(p.TransactionID)
	tm(p.OccurredAt)
	str(strconv.FormatInt(p.Amount, 10))
	for _, s := range []string{p.Currency, p.Account.ID, p.Account.Email, p.Account.Country} {
		str(s)
	}
	tm(p.Account.CreatedAt)
	for _, s := range []string{
		p.Card.Fingerprint, p.Card.BIN, p.Card.Country,
		p.Device.ID, p.Device.IP, p.Device.IPCountry,
		p.Merchant.ID, p.Merchant.MCC, p.Merchant.Country,
	} {
		str(s)
	}
	hashAttributes(p.Attributes, str)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

func hashAttributes(attrs map[string]any, str func(string)) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		str(k)
		switch v := attrs[k].(type) {
		case string:
			str("s" + v)
		case float64:
			str("n" + strconv.FormatUint(math.Float64bits(v), 16))
		case bool:
			str("b" + strconv.FormatBool(v))
		default:
			str("?")
		}
	}
}
