package rules

import (
	"sync"
	"time"

	"github.com/expr-lang/expr/types"

	"github.com/riskengine/risk/engine"
)

// Lists answers list membership for in_list. It must be safe for concurrent
// use and fast: it is called on the payment path.
type Lists interface {
	Contains(list, value string) bool
}

// Env declares what expressions may name beyond the fixed payment fields.
type Env struct {
	// Features are the names of the defined features (features.<name>).
	Features []string
	// Lists answers in_list; nil means every in_list call is false.
	Lists Lists
}

var timeType = types.TypeOf(time.Time{})

// paymentTypes declares the payment as expressions see it, by JSON name.
func paymentTypes() types.Map {
	return types.Map{
		"transaction_id": types.String,
		"amount":         types.Int,
		"currency":       types.String,
		"occurred_at":    timeType,
		"account": types.Map{
			"id": types.String, "email": types.String, "country": types.String,
			"created_at": timeType, "age_days": types.Float64,
		},
		"card":       types.Map{"fingerprint": types.String, "bin": types.String, "country": types.String},
		"device":     types.Map{"id": types.String, "ip": types.String, "ip_country": types.String},
		"merchant":   types.Map{"id": types.String, "mcc": types.String, "country": types.String},
		"attributes": types.Map{types.Extra: types.Any},
	}
}

// limitNames are the fields of limits.<name>.
var limitNames = []string{"single_max", "daily_max", "daily_remaining", "daily_spent", "trust"}

// ruleTypes is the full environment of a rule expression.
func ruleTypes(features []string) types.Map {
	m := paymentTypes()
	f := make(types.Map, len(features))
	for _, name := range features {
		f[name] = types.Float64
	}
	m["features"] = f
	l := types.Map{}
	for _, name := range limitNames {
		if name == "trust" {
			l[name] = types.Float64
		} else {
			l[name] = types.Int
		}
	}
	m["limits"] = l
	m["now"] = timeType
	return m
}

// env is the value an expression runs against. Maps are reused through a
// pool: building fresh nested maps per payment costs more than the rules.
type env struct {
	top, account, card, device, merchant, features, limits map[string]any
}

var envPool = sync.Pool{New: func() any {
	return &env{
		top: make(map[string]any, 16), account: make(map[string]any, 5), card: make(map[string]any, 3),
		device: make(map[string]any, 3), merchant: make(map[string]any, 3),
		features: make(map[string]any, 16), limits: make(map[string]any, 5),
	}
}}

var emptyAttributes = map[string]any{}

// fillPayment writes the payment fields into e.
func (e *env) fillPayment(p *engine.Payment) {
	t := e.top
	t["transaction_id"] = p.TransactionID
	t["amount"] = int(p.Amount)
	t["currency"] = p.Currency
	t["occurred_at"] = p.OccurredAt
	e.account["id"] = p.Account.ID
	e.account["email"] = p.Account.Email
	e.account["country"] = p.Account.Country
	e.account["created_at"] = p.Account.CreatedAt
	age := 0.0
	if !p.Account.CreatedAt.IsZero() {
		age = p.OccurredAt.Sub(p.Account.CreatedAt).Hours() / 24
	}
	e.account["age_days"] = age
	e.card["fingerprint"] = p.Card.Fingerprint
	e.card["bin"] = p.Card.BIN
	e.card["country"] = p.Card.Country
	e.device["id"] = p.Device.ID
	e.device["ip"] = p.Device.IP
	e.device["ip_country"] = p.Device.IPCountry
	e.merchant["id"] = p.Merchant.ID
	e.merchant["mcc"] = p.Merchant.MCC
	e.merchant["country"] = p.Merchant.Country
	t["account"], t["card"], t["device"], t["merchant"] = e.account, e.card, e.device, e.merchant
	if p.Attributes != nil {
		t["attributes"] = p.Attributes
	} else {
		t["attributes"] = emptyAttributes
	}
}

// fill writes a whole rule input into e.
func (e *env) fill(in *engine.Input, featureNames []string) {
	e.fillPayment(in.Payment)
	clear(e.features)
	for _, name := range featureNames {
		e.features[name] = 0.0
	}
	for _, f := range in.Features {
		e.features[f.Name] = f.Value
	}
	l := in.Limits
	if l == nil {
		l = &engine.Limits{}
	}
	e.limits["single_max"] = int(l.SingleMax)
	e.limits["daily_max"] = int(l.DailyMax)
	e.limits["daily_remaining"] = int(l.DailyRemaining)
	e.limits["daily_spent"] = int(l.DailySpent)
	e.limits["trust"] = l.Trust
	e.top["features"] = e.features
	e.top["limits"] = e.limits
	e.top["now"] = in.Now
}

func (e *env) release() {
	e.top["attributes"] = nil // do not keep the payment alive from the pool
	envPool.Put(e)
}
