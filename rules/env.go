package rules

import (
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"
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

// ruleTypes is the full environment of a rule expression. Besides the
// nested maps it declares every field of the flattened roots under its
// dotted name ("card.country"): rule programs are patched to read those
// directly (see flattener), which skips expr's reflection-based map fetch.
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
	for root := range flatRoots {
		for field, t := range m[root].(types.Map) {
			m[root+"."+field] = t
		}
	}
	return m
}

// flatRoots are the roots whose fields rule programs read by dotted name.
// Attributes stay nested: their names are open.
var flatRoots = map[string]bool{"account": true, "card": true, "device": true, "merchant": true, "features": true, "limits": true}

// flattener rewrites root.field (a constant field of a flattened root) into
// the identifier "root.field". The rewritten node keeps its position, so
// type errors still point at the source.
type flattener struct{}

func (flattener) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional {
		return
	}
	root, ok := m.Node.(*ast.IdentifierNode)
	if !ok || !flatRoots[root.Value] {
		return
	}
	field, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	ast.Patch(node, &ast.IdentifierNode{Value: root.Value + "." + field.Value})
}

// env is the value an expression runs against. Maps are reused through a
// pool: building fresh nested maps per payment costs more than the rules.
// Fields of the flattened roots are written twice, nested and under their
// dotted name in top, from one boxed value.
type env struct {
	top, account, card, device, merchant, features, limits map[string]any
}

var envPool = sync.Pool{New: func() any {
	return &env{
		top: make(map[string]any, 64), account: make(map[string]any, 5), card: make(map[string]any, 3),
		device: make(map[string]any, 3), merchant: make(map[string]any, 3),
		features: make(map[string]any, 16), limits: make(map[string]any, 5),
	}
}}

var emptyAttributes = map[string]any{}

// set writes v as field of nested and as key in top.
func (e *env) set(nested map[string]any, field, key string, v any) {
	nested[field] = v
	e.top[key] = v
}

// fillPayment writes the payment fields into e.
func (e *env) fillPayment(p *engine.Payment) {
	t := e.top
	t["transaction_id"] = p.TransactionID
	t["amount"] = int(p.Amount)
	t["currency"] = p.Currency
	t["occurred_at"] = p.OccurredAt
	e.set(e.account, "id", "account.id", p.Account.ID)
	e.set(e.account, "email", "account.email", p.Account.Email)
	e.set(e.account, "country", "account.country", p.Account.Country)
	e.set(e.account, "created_at", "account.created_at", p.Account.CreatedAt)
	age := 0.0
	if !p.Account.CreatedAt.IsZero() {
		age = p.OccurredAt.Sub(p.Account.CreatedAt).Hours() / 24
	}
	e.set(e.account, "age_days", "account.age_days", age)
	e.set(e.card, "fingerprint", "card.fingerprint", p.Card.Fingerprint)
	e.set(e.card, "bin", "card.bin", p.Card.BIN)
	e.set(e.card, "country", "card.country", p.Card.Country)
	e.set(e.device, "id", "device.id", p.Device.ID)
	e.set(e.device, "ip", "device.ip", p.Device.IP)
	e.set(e.device, "ip_country", "device.ip_country", p.Device.IPCountry)
	e.set(e.merchant, "id", "merchant.id", p.Merchant.ID)
	e.set(e.merchant, "mcc", "merchant.mcc", p.Merchant.MCC)
	e.set(e.merchant, "country", "merchant.country", p.Merchant.Country)
	t["account"], t["card"], t["device"], t["merchant"] = e.account, e.card, e.device, e.merchant
	if p.Attributes != nil {
		t["attributes"] = p.Attributes
	} else {
		t["attributes"] = emptyAttributes
	}
}

// featureKeys maps each feature name to its dotted env key.
type featureKeys map[string]string

func newFeatureKeys(names []string) featureKeys {
	k := make(featureKeys, len(names))
	for _, n := range names {
		k[n] = "features." + n
	}
	return k
}

// zero is a boxed 0.0, shared so absent features cost no allocation.
var zero any = 0.0

// fill writes a whole rule input into e.
func (e *env) fill(in *engine.Input, keys featureKeys) {
	e.fillPayment(in.Payment)
	clear(e.features)
	for name, key := range keys {
		e.set(e.features, name, key, zero)
	}
	for _, f := range in.Features {
		if key, ok := keys[f.Name]; ok {
			e.set(e.features, f.Name, key, f.Value)
		}
	}
	l := in.Limits
	if l == nil {
		l = &engine.Limits{}
	}
	e.set(e.limits, "single_max", "limits.single_max", int(l.SingleMax))
	e.set(e.limits, "daily_max", "limits.daily_max", int(l.DailyMax))
	e.set(e.limits, "daily_remaining", "limits.daily_remaining", int(l.DailyRemaining))
	e.set(e.limits, "daily_spent", "limits.daily_spent", int(l.DailySpent))
	e.set(e.limits, "trust", "limits.trust", l.Trust)
	e.top["features"] = e.features
	e.top["limits"] = e.limits
	e.top["now"] = in.Now
}

func (e *env) release() {
	e.top["attributes"] = nil // do not keep the payment alive from the pool
	envPool.Put(e)
}
