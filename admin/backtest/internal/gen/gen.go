// Package gen generates the synthetic labelled payment stream in
// testdata/replay: a few thousand honest payments with realistic noise
// (travellers, shared family devices, bursts of honest purchases, large
// first purchases) and four labelled fraud patterns:
//
//   - card testing: a bot tries many cards, or one card many times, with
//     small amounts within minutes (labelled fraud);
//   - account takeover: an established account pays from a new device,
//     mostly from another country, for more than its habit (fraud);
//   - amount spike (bust-out): a young account makes a few small payments
//     then one far larger (the spike is labelled fraud, the build-up is
//     left unlabelled);
//   - stolen card: one card used by many new accounts within days
//     (labelled chargeback).
//
// Transaction ids name the scenario (tx_<scenario>_<n>) so a test can
// measure each pattern; rules must not rely on them. The output is a pure
// function of the seed: regenerate with
//
//	go test ./admin/backtest -run TestSyntheticDataset -update
package gen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Seed is the seed of the committed data set.
const Seed = 20261001

// Start is when the generated traffic begins; it spans Days days.
var Start = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// Days is the length of the generated period.
const Days = 14

// Scenario names, as they appear in transaction ids.
const (
	Legit       = "lg"
	CardTesting = "ct"
	TakeOver    = "ato"
	AmountSpike = "spk"
	StolenCard  = "stc"
)

// Event is one generated payment in the POST /v1/decisions shape plus its
// label.
type Event struct {
	TransactionID string   `json:"transaction_id"`
	OccurredAt    string   `json:"occurred_at"`
	Amount        int64    `json:"amount"`
	Currency      string   `json:"currency"`
	Account       Account  `json:"account"`
	Card          Card     `json:"card"`
	Device        Device   `json:"device"`
	Merchant      Merchant `json:"merchant"`
	Label         string   `json:"label,omitempty"`

	at       time.Time
	scenario string
}

// Account is the wire form of the paying account.
type Account struct {
	ID        string `json:"id"`
	Email     string `json:"email,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	Country   string `json:"country,omitempty"`
}

// Card is the wire form of the card.
type Card struct {
	Fingerprint string `json:"fingerprint"`
	BIN         string `json:"bin"`
	Country     string `json:"country"`
}

// Device is the wire form of the device.
type Device struct {
	ID        string `json:"id"`
	IP        string `json:"ip"`
	IPCountry string `json:"ip_country"`
}

// Merchant is the wire form of the merchant.
type Merchant struct {
	ID      string `json:"id"`
	MCC     string `json:"mcc"`
	Country string `json:"country"`
}

var countries = []string{"US", "US", "US", "GB", "GB", "FR", "DE", "ES", "IT", "NL", "CA", "BR"}

var currencyOf = map[string]string{
	"US": "USD", "GB": "GBP", "FR": "EUR", "DE": "EUR", "ES": "EUR", "IT": "EUR", "NL": "EUR",
	"CA": "CAD", "BR": "BRL", "RO": "RON", "NG": "NGN", "VN": "VND", "RU": "RUB",
}

// fraudCountries are where takeovers and card testing bots connect from.
var fraudCountries = []string{"RO", "NG", "VN", "RU", "BR"}

type person struct {
	account  Account
	cards    []Card
	device   Device
	created  time.Time
	habit    float64 // typical amount, minor units
	merchant []int   // usual merchants
}

type world struct {
	rng       *rand.Rand
	merchants []Merchant
	events    []*Event
	serial    int
}

// Generate writes the data set for seed, one JSON event per line in time
// order.
func Generate(w io.Writer, seed uint64) error {
	g := &world{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range 24 {
		c := g.pick(countries)
		mcc := []string{"5411", "5812", "5999", "4121", "5732", "5651", "7011", "5942"}[i%8]
		g.merchants = append(g.merchants, Merchant{ID: fmt.Sprintf("m_%03d", i+1), MCC: mcc, Country: c})
	}
	people := g.population(320)
	g.legit(people)
	g.cardTesting()
	g.takeovers(people)
	g.amountSpikes()
	g.stolenCards()

	slices.SortStableFunc(g.events, func(a, b *Event) int { return a.at.Compare(b.at) })
	counts := map[string]int{}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range g.events {
		counts[e.scenario]++
		e.TransactionID = fmt.Sprintf("tx_%s_%05d", e.scenario, counts[e.scenario])
		e.OccurredAt = e.at.Format(time.RFC3339)
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (g *world) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *world) id(prefix string) string {
	g.serial++
	return fmt.Sprintf("%s_%05d", prefix, g.serial)
}

// ip returns a synthetic address; the first octet keeps clear of the
// sample rules' blocked range 198.51.100.0/24.
func (g *world) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 20+g.rng.IntN(180), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
}

func (g *world) card(country string) Card {
	return Card{Fingerprint: g.id("fp"), BIN: fmt.Sprintf("4%05d", g.rng.IntN(100000)), Country: country}
}

// lognormal returns an amount around median, in minor units.
func (g *world) lognormal(median, sigma float64) int64 {
	return max(100, int64(median*math.Exp(sigma*g.rng.NormFloat64())))
}

// daytime returns a time on day d at a plausible local hour.
func (g *world) daytime(d int) time.Time {
	h := 7 + g.rng.IntN(16)
	return Start.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
}

func (g *world) add(scenario string, at time.Time, amount int64, acc Account, card Card, dev Device, m Merchant, label string) {
	g.events = append(g.events, &Event{
		Amount: amount, Currency: currencyOf[m.Country], Account: acc, Card: card, Device: dev, Merchant: m,
		Label: label, at: at, scenario: scenario,
	})
}

func (g *world) population(n int) []*person {
	out := make([]*person, n)
	for i := range out {
		c := g.pick(countries)
		created := Start.Add(-time.Duration(30+g.rng.IntN(900)) * 24 * time.Hour)
		if g.rng.Float64() < 0.08 { // new customers who join during the period
			created = Start.Add(time.Duration(g.rng.IntN(Days*24)) * time.Hour)
		}
		id := g.id("acc")
		p := &person{
			account: Account{ID: id, Email: id + "@mail.example", CreatedAt: created.Format(time.RFC3339), Country: c},
			cards:   []Card{g.card(c)},
			device:  Device{ID: g.id("dev"), IP: g.ip(), IPCountry: c},
			created: created,
			habit:   1500 * math.Exp(1.1*g.rng.Float64()*2),
		}
		if g.rng.Float64() < 0.15 {
			p.cards = append(p.cards, g.card(c))
		}
		for range 3 {
			p.merchant = append(p.merchant, g.merchantIn(c))
		}
		out[i] = p
	}
	// Households: three people in one country share one device, so it
	// sees three cards.
	for i := 0; i+2 < 18; i += 3 {
		for _, p := range out[i+1 : i+3] {
			c := out[i].account.Country
			p.device, p.account.Country = out[i].device, c
			for k := range p.cards {
				p.cards[k].Country = c
			}
		}
	}
	return out
}

// merchantIn returns a merchant index, in country c four times in five.
func (g *world) merchantIn(c string) int {
	if g.rng.Float64() < 0.8 {
		var local []int
		for i, m := range g.merchants {
			if m.Country == c {
				local = append(local, i)
			}
		}
		if len(local) > 0 {
			return local[g.rng.IntN(len(local))]
		}
	}
	return g.rng.IntN(len(g.merchants))
}

// legit generates honest traffic with its noise.
func (g *world) legit(people []*person) {
	for i, p := range people {
		n := 3 + g.rng.IntN(10)
		first := int(max(0, p.created.Sub(Start).Hours()/24))
		for range n {
			d := first + g.rng.IntN(max(1, Days-first))
			at := g.daytime(d)
			if at.Before(p.created) {
				at = p.created.Add(time.Duration(1+g.rng.IntN(120)) * time.Minute)
			}
			amount := g.lognormal(p.habit, 0.5)
			if g.rng.Float64() < 0.03 { // an honest big purchase
				amount *= int64(4 + g.rng.IntN(6))
			}
			card := p.cards[g.rng.IntN(len(p.cards))]
			dev := p.device
			if g.rng.Float64() < 0.015 { // a traveller paying from abroad
				dev = Device{ID: p.device.ID, IP: g.ip(), IPCountry: g.pick([]string{"ES", "IT", "FR", "US", "GB", "PT"})}
			}
			m := g.merchants[p.merchant[g.rng.IntN(len(p.merchant))]]
			g.add(Legit, at, amount, p.account, card, dev, m, "legit")
		}
		// A few people buy several tickets in a row within minutes.
		if i%97 == 5 {
			at := g.daytime(g.rng.IntN(Days))
			m := g.merchants[p.merchant[0]]
			for k := range 5 {
				g.add(Legit, at.Add(time.Duration(k)*90*time.Second), g.lognormal(p.habit, 0.2), p.account, p.cards[0], p.device, m, "legit")
			}
		}
	}
}

// cardTesting generates bots trying stolen card numbers with small amounts.
func (g *world) cardTesting() {
	for b := range 8 {
		c := g.pick(fraudCountries)
		dev := Device{ID: g.id("dev"), IP: g.ip(), IPCountry: c}
		if b == 0 { // one bot connects from a range already on the block list
			dev.IP = fmt.Sprintf("198.51.100.%d", 10+g.rng.IntN(200))
		}
		m := g.merchants[g.rng.IntN(len(g.merchants))]
		at := g.daytime(g.rng.IntN(Days)).Add(time.Duration(g.rng.IntN(12)) * time.Hour)
		if b%4 == 3 {
			// One card tried again and again with changing amounts.
			card := g.card(g.pick(countries))
			for k := range 7 + g.rng.IntN(4) {
				acc := Account{ID: g.id("guest")}
				g.add(CardTesting, at.Add(time.Duration(k*40+g.rng.IntN(30))*time.Second), int64(100+g.rng.IntN(400)), acc, card, dev, m, "fraud")
			}
			continue
		}
		for k := range 14 + g.rng.IntN(10) {
			card := g.card(g.pick(countries))
			acc := Account{ID: g.id("guest")}
			if b%2 == 1 { // a proxy in each card's own country hides the mismatch
				dev.IPCountry = card.Country
			}
			t := at.Add(time.Duration(k*25+g.rng.IntN(20)) * time.Second)
			g.add(CardTesting, t, int64(100+g.rng.IntN(300)), acc, card, dev, m, "fraud")
			if g.rng.Float64() < 0.3 {
				g.add(CardTesting, t.Add(8*time.Second), int64(100+g.rng.IntN(300)), acc, card, dev, m, "fraud")
			}
		}
	}
}

// takeovers generates fraud on established accounts from a new device.
func (g *world) takeovers(people []*person) {
	taken := 0
	for _, p := range people[20:] {
		if taken == 28 {
			break
		}
		if p.created.After(Start.Add(-60 * 24 * time.Hour)) {
			continue
		}
		taken++
		c := g.pick(fraudCountries)
		if taken%3 == 0 {
			c = p.account.Country // a local proxy hides the country
		}
		dev := Device{ID: g.id("dev"), IP: g.ip(), IPCountry: c}
		at := g.daytime(Days/2 + g.rng.IntN(Days/2))
		m := g.merchants[g.rng.IntN(len(g.merchants))]
		for k := range 1 + g.rng.IntN(3) {
			amount := int64(p.habit * (3 + 4*g.rng.Float64()))
			g.add(TakeOver, at.Add(time.Duration(k*7)*time.Minute), amount, p.account, p.cards[0], dev, m, "fraud")
		}
	}
}

// amountSpikes generates young accounts that build a small history, then
// cash out with one large payment.
func (g *world) amountSpikes() {
	for k := range 20 {
		c := g.pick(countries)
		ageDays := 1 + g.rng.IntN(5)
		if k%4 == 3 {
			ageDays = 8 + g.rng.IntN(4) // old enough to pass the new-account rule
		}
		spikeDay := ageDays + g.rng.IntN(Days-ageDays)
		spike := g.daytime(spikeDay)
		created := spike.Add(-time.Duration(ageDays) * 24 * time.Hour)
		id := g.id("acc")
		acc := Account{ID: id, Email: id + "@mail.example", CreatedAt: created.Format(time.RFC3339), Country: c}
		card := g.card(c)
		dev := Device{ID: g.id("dev"), IP: g.ip(), IPCountry: c}
		m := g.merchants[g.merchantIn(c)]
		for j := range 3 + g.rng.IntN(2) {
			at := created.Add(time.Duration(2+j*int(spike.Sub(created).Hours())/5) * time.Hour)
			g.add(AmountSpike, at, int64(900+g.rng.IntN(2200)), acc, card, dev, m, "")
		}
		g.add(AmountSpike, spike, int64(60000+g.rng.IntN(90000)), acc, card, dev, g.merchants[g.rng.IntN(len(g.merchants))], "fraud")
	}
}

// stolenCards generates cards used by many new accounts within days.
func (g *world) stolenCards() {
	for range 11 {
		c := g.pick(countries)
		card := g.card(c)
		start := g.daytime(g.rng.IntN(Days - 3))
		for k := range 4 + g.rng.IntN(4) {
			id := g.id("acc")
			at := start.Add(time.Duration(k*(4+g.rng.IntN(10))) * time.Hour)
			acc := Account{ID: id, Email: id + "@mail.example", CreatedAt: at.Add(-time.Duration(10+g.rng.IntN(50)) * time.Minute).Format(time.RFC3339), Country: c}
			ipc := c
			if g.rng.Float64() < 0.4 {
				ipc = g.pick(fraudCountries)
			}
			dev := Device{ID: g.id("dev"), IP: g.ip(), IPCountry: ipc}
			g.add(StolenCard, at, g.lognormal(9000, 0.6), acc, card, dev, g.merchants[g.rng.IntN(len(g.merchants))], "chargeback")
		}
	}
}
