package loadgen

import "strconv"

// payment holds the choices behind one request body as numbers and constant
// strings, so building a body allocates nothing.
type payment struct {
	seq             uint64
	guest           bool   // a card-testing guest account
	account, email  uint64 // id numbers
	country         int    // account country, index into countries
	createdAt       int64  // days since the Unix epoch
	amount          int64  // minor units
	currency        string
	card            uint64 // fingerprint hash
	bin             string
	cardCountry     int
	device, ip      uint64 // hashes
	ipCountry       int
	merchant        uint64
	mcc             string
	merchantCountry int
	channel         string
	items           int
}

// appendJSON appends p as the POST /v1/decisions request body. Every string
// it writes is plain ASCII, so nothing needs escaping.
func (p *payment) appendJSON(b, txPrefix, occurredAt []byte) []byte {
	b = append(b, `{"transaction_id":"`...)
	b = append(b, txPrefix...)
	b = strconv.AppendUint(b, p.seq, 10)
	b = append(b, `","occurred_at":"`...)
	b = append(b, occurredAt...)
	b = append(b, `","amount":`...)
	b = strconv.AppendInt(b, p.amount, 10)
	b = append(b, `,"currency":"`...)
	b = append(b, p.currency...)

	b = append(b, `","account":{"id":"acc_`...)
	if p.guest {
		b = append(b, 'g')
		b = strconv.AppendUint(b, p.account, 36)
		b = append(b, `","email":"g`...)
		b = strconv.AppendUint(b, p.email, 36)
		b = append(b, `@example.net`...)
	} else {
		b = strconv.AppendUint(b, p.account, 10)
		b = append(b, `","email":"a`...)
		b = strconv.AppendUint(b, p.email, 10)
		b = append(b, `@example.com`...)
	}
	b = append(b, `","created_at":"`...)
	b = appendDate(b, p.createdAt)
	b = append(b, `T00:00:00Z","country":"`...)
	b = append(b, countries[p.country].code...)

	b = append(b, `"},"card":{"fingerprint":"fp_`...)
	b = strconv.AppendUint(b, p.card>>16, 16)
	b = append(b, `","bin":"`...)
	b = append(b, p.bin...)
	b = append(b, `","country":"`...)
	b = append(b, countries[p.cardCountry].code...)

	b = append(b, `"},"device":{"id":"dev_`...)
	b = strconv.AppendUint(b, p.device>>24, 16)
	b = append(b, `","ip":"`...)
	b = appendIP(b, p.ip)
	b = append(b, `","ip_country":"`...)
	b = append(b, countries[p.ipCountry].code...)

	b = append(b, `"},"merchant":{"id":"m_`...)
	b = strconv.AppendUint(b, p.merchant+1, 10)
	b = append(b, `","mcc":"`...)
	b = append(b, p.mcc...)
	b = append(b, `","country":"`...)
	b = append(b, countries[p.merchantCountry].code...)

	b = append(b, `"},"attributes":{"channel":"`...)
	b = append(b, p.channel...)
	b = append(b, `","items":`...)
	b = strconv.AppendInt(b, int64(p.items), 10)
	return append(b, "}}"...)
}

// appendDate appends the civil date of day (days since 1970-01-01) as
// YYYY-MM-DD, using Howard Hinnant's days-to-civil algorithm.
func appendDate(b []byte, day int64) []byte {
	z := day + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	y := yoe + era*400
	if m <= 2 {
		y++
	}
	b = strconv.AppendInt(b, y, 10)
	b = append(b, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	return b
}

// country is an account, card, IP or merchant country and the currency its
// accounts pay in.
type country struct {
	code     string
	currency string
	weight   int // percent of accounts
}

// countries must start with US: merchants default to index 0.
var countries = [...]country{
	{"US", "USD", 60}, {"GB", "GBP", 10}, {"CA", "USD", 6}, {"DE", "EUR", 6}, {"FR", "EUR", 5},
	{"ES", "EUR", 3}, {"IT", "EUR", 3}, {"AU", "USD", 3}, {"NL", "EUR", 2}, {"BR", "USD", 2},
}

// weightedCountry maps p in [0, 100) to a country index by weight.
func weightedCountry(p uint64) int {
	for i, c := range countries {
		if p < uint64(c.weight) {
			return i
		}
		p -= uint64(c.weight)
	}
	return 0
}

var (
	bins        = [...]string{"411111", "424242", "400005", "453201", "510510", "555555", "522222", "222300", "378282", "601100", "353011", "520082"}
	mccs        = [...]string{"5999", "5411", "5812", "5732", "4121", "5311", "5691", "4511", "5942", "7995", "5816", "5968"}
	channels    = [...]string{"web", "web", "web", "app", "app", "api"}
	firstOctets = [...]uint8{23, 31, 45, 62, 77, 81, 91, 103, 145, 176, 185, 203}
)
