package loadgen

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"
)

// Traffic shape. The account Zipf (s=1.1, v=50) gives the most popular of
// 100,000 accounts about 0.4% of payments and the top 1% of accounts half.
const (
	accountZipfS   = 1.1
	accountZipfV   = 50
	merchants      = 2000
	foreignIPShare = 0.03
	largeShare     = 0.01
	retryRing      = 1024
	burstMin       = 20 // card-testing attempts per burst, inclusive
	burstMax       = 60
	// burstSpan is about how long one card-testing burst lasts: enough
	// bursts run side by side that each sends its attempts over this span.
	burstSpan = 3 * time.Second
)

// traffic produces request bodies in a deterministic order for its seed. It
// is owned by the scheduler goroutine and not safe for concurrent use.
type traffic struct {
	rng       *rand.Rand
	accounts  *rand.Zipf
	merchants *rand.Zipf
	nAccounts uint64
	spread    uint64 // multiplier coprime to nAccounts: scatters popular ids
	prefix    []byte // "tx_<run>_"
	seq       uint64

	retryRatio float64
	ring       [][]byte // recent original bodies, for retries
	ringNext   int

	attackRatio float64
	attackers   []burst // card-testing bursts under way

	stampSec int64
	stamp    []byte // occurred_at for stampSec, RFC 3339
}

// newTraffic returns a generator for c whose transaction ids start with
// "tx_<run>_".
func newTraffic(c Config, run string) *traffic {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x6c6f616467656e))
	n := uint64(c.Accounts)
	t := &traffic{
		rng:        rng,
		accounts:   rand.NewZipf(rng, accountZipfS, accountZipfV, n-1),
		merchants:  rand.NewZipf(rng, 1.2, 10, merchants-1),
		nAccounts:  n,
		spread:     coprime(n),
		prefix:     append([]byte("tx_"+run), '_'),
		retryRatio: c.RetryRatio,
		ring:       make([][]byte, 0, retryRing),
		stampSec:   math.MinInt64,
	}
	if c.AttackRatio > 0 {
		t.attackRatio = c.AttackRatio
		t.attackers = make([]burst, concurrentBursts(c.AttackRatio, c.Rate))
	}
	return t
}

// concurrentBursts returns how many bursts must run side by side for each
// to last about burstSpan at the given attack share of rate.
func concurrentBursts(ratio, rate float64) int {
	const mean = (burstMin + burstMax) / 2
	k := math.Round(burstSpan.Seconds() * ratio * rate / mean)
	return int(min(max(k, 1), 1000))
}

// next appends the body of the payment due at `at` to b.
func (t *traffic) next(at time.Time, b []byte) []byte {
	if len(t.ring) > 0 && t.rng.Float64() < t.retryRatio {
		return append(b, t.ring[t.rng.IntN(len(t.ring))]...)
	}
	var p payment
	if t.attackRatio > 0 && t.rng.Float64() < t.attackRatio {
		p = t.attack(at)
	} else {
		p = t.normal()
	}
	t.seq++
	p.seq = t.seq
	start := len(b)
	b = p.appendJSON(b, t.prefix, t.occurredAt(at))
	t.remember(b[start:])
	return b
}

// remember keeps a copy of body for later retries, reusing ring slots.
func (t *traffic) remember(body []byte) {
	if t.retryRatio == 0 {
		return
	}
	if len(t.ring) < cap(t.ring) {
		t.ring = append(t.ring, append([]byte(nil), body...))
		return
	}
	t.ring[t.ringNext] = append(t.ring[t.ringNext][:0], body...)
	t.ringNext = (t.ringNext + 1) % len(t.ring)
}

func (t *traffic) occurredAt(at time.Time) []byte {
	if s := at.Unix(); s != t.stampSec {
		t.stampSec = s
		t.stamp = at.UTC().AppendFormat(t.stamp[:0], time.RFC3339)
	}
	return t.stamp
}

// normal returns an ordinary payment by a Zipf-popular account.
func (t *traffic) normal() payment {
	hi, lo := bits.Mul64(t.accounts.Uint64(), t.spread)
	n := bits.Rem64(hi, lo, t.nAccounts)
	a := accountOf(n)
	p := payment{
		account:   n,
		email:     n,
		country:   a.country,
		createdAt: a.createdAt,
		amount:    t.amount(),
		currency:  countries[a.country].currency,
		channel:   channels[t.rng.IntN(len(channels))],
		items:     1 + t.rng.IntN(5),
	}
	card := 0
	if a.cards == 2 && t.rng.IntN(4) == 0 {
		card = 1
	}
	p.card = mix(n<<3 | uint64(card) | 1<<62)
	p.bin = bins[p.card%uint64(len(bins))]
	p.cardCountry = a.country
	if p.card>>40%20 == 0 {
		p.cardCountry = (a.country + 1 + int(p.card>>48)%(len(countries)-1)) % len(countries)
	}
	p.device = mix(n<<3 | uint64(t.rng.IntN(a.devices)) | 1<<61)
	p.ip = p.device
	p.ipCountry = a.country
	if t.rng.Float64() < foreignIPShare {
		p.ip = t.rng.Uint64()
		p.ipCountry = (a.country + 1 + t.rng.IntN(len(countries)-1)) % len(countries)
	}
	t.merchant(&p)
	return p
}

// amount returns a log-normal amount in minor units, median 40.00, mostly
// between 5.00 and 500.00, with a few large ones.
func (t *traffic) amount() int64 {
	a := math.Exp(math.Log(4000) + 0.9*t.rng.NormFloat64())
	a = min(max(a, 500), 50000)
	if t.rng.Float64() < largeShare {
		a *= float64(5 + t.rng.IntN(46))
	}
	return int64(a)
}

func (t *traffic) merchant(p *payment) {
	k := t.merchants.Uint64()
	h := mix(k | 1<<60)
	p.merchant = k
	p.mcc = mccs[h%uint64(len(mccs))]
	p.merchantCountry = 0
	if h>>32%5 == 0 {
		p.merchantCountry = int(h>>40) % len(countries)
	}
}

// burst is one card-testing attack: a guest account trying one card many
// times with small amounts from one device at one merchant.
type burst struct {
	left int // attempts still to come
	p    payment
}

// attack returns the next attempt of a random burst under way, starting a
// new burst in its place when it has run out.
func (t *traffic) attack(at time.Time) payment {
	b := &t.attackers[t.rng.IntN(len(t.attackers))]
	if b.left == 0 {
		*b = t.newBurst(at)
	}
	b.left--
	p := b.p
	p.amount = int64(100 + t.rng.IntN(201))
	return p
}

func (t *traffic) newBurst(at time.Time) burst {
	id := t.rng.Uint64()
	p := payment{
		guest:       true,
		account:     id >> 20,
		email:       id >> 24,
		country:     0,
		createdAt:   at.Unix() / 86400,
		currency:    "USD",
		card:        t.rng.Uint64(),
		cardCountry: t.rng.IntN(len(countries)),
		device:      t.rng.Uint64(),
		ip:          t.rng.Uint64(),
		ipCountry:   1 + t.rng.IntN(len(countries)-1),
		channel:     "web",
		items:       1,
	}
	p.bin = bins[p.card%uint64(len(bins))]
	t.merchant(&p)
	return burst{left: burstMin + t.rng.IntN(burstMax-burstMin+1), p: p}
}

// account is what an account number determines, the same in every run.
type account struct {
	country   int
	createdAt int64 // days since the Unix epoch
	cards     int   // 1 or 2
	devices   int   // 1 to 3
}

// epoch2019 is 2019-01-01 in days since the Unix epoch.
const epoch2019 = 17897

func accountOf(n uint64) account {
	h := mix(n)
	return account{
		country:   weightedCountry(h % 100),
		createdAt: epoch2019 + int64(h>>8%(7*365)),
		cards:     1 + int(h>>24&1),
		devices:   1 + int(h>>28%3),
	}
}

// mix is the SplitMix64 finaliser: a fixed bijective hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// coprime returns a large multiplier coprime to n, so k*m%n permutes [0, n).
func coprime(n uint64) uint64 {
	m := uint64(2654435761) % n
	for m < 2 || gcd(m, n) != 1 {
		m++
		if m >= n {
			return 1
		}
	}
	return m
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// appendIP appends a dotted IPv4 address derived from h, avoiding private
// and reserved first octets.
func appendIP(b []byte, h uint64) []byte {
	b = strconv.AppendUint(b, uint64(firstOctets[h%uint64(len(firstOctets))]), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, h>>8&255, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, h>>16&255, 10)
	b = append(b, '.')
	return strconv.AppendUint(b, 1+h>>24%254, 10)
}
