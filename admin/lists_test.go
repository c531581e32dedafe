package admin_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/riskengine/risk/features"
)

type listInfo struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description"`
	Author      string   `json:"author"`
	Items       int      `json:"items"`
	UsedBy      []string `json:"used_by"`
}

type item struct {
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Author    string    `json:"author,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func TestListsAPI(t *testing.T) {
	h := newHarness(t)
	var l listInfo
	h.must(http.StatusCreated, http.MethodPut, "/admin/lists/vip", map[string]string{"kind": "string", "description": "VIPs"}, &l)
	if l.Name != "vip" || l.Kind != "string" || l.Author != "dev" || l.Description != "VIPs" {
		t.Errorf("created %+v", l)
	}
	h.must(http.StatusOK, http.MethodPut, "/admin/lists/vip", map[string]string{"description": "Very important"}, &l)
	if l.Kind != "string" || l.Description != "Very important" {
		t.Errorf("updated %+v", l)
	}
	h.must(http.StatusCreated, http.MethodPut, "/admin/lists/office_ips", map[string]string{"kind": "ip"}, &l)
	if l.Kind != "cidr" {
		t.Errorf("kind ip stored as %q, want cidr", l.Kind)
	}

	for _, tt := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"bad name", "/admin/lists/Bad%20Name", map[string]string{"kind": "string"}, http.StatusBadRequest, "name"},
		{"bad kind", "/admin/lists/x", map[string]string{"kind": "regex"}, http.StatusBadRequest, "kind"},
		{"unknown field", "/admin/lists/x", map[string]string{"kind": "string", "owner": "me"}, http.StatusBadRequest, "owner"},
		{"kind change with items", "/admin/lists/blocked_cards", map[string]string{"kind": "cidr"}, http.StatusConflict, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "kind change with items" {
				h.must(http.StatusCreated, http.MethodPost, "/admin/lists/blocked_cards/items", item{Value: "fp_1"}, nil)
			}
			var e apiError
			h.must(tt.status, http.MethodPut, tt.path, tt.body, &e)
			if e.Field != tt.field {
				t.Errorf("field = %q, want %q (%+v)", e.Field, tt.field, e)
			}
		})
	}

	// Items: one, or a batch; all or nothing; paged in value order.
	var added struct{ Items []item }
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/vip/items", item{Value: "acc_1", Reason: "board"}, &added)
	if len(added.Items) != 1 || added.Items[0].Author != "dev" || added.Items[0].Reason != "board" {
		t.Errorf("added %+v", added)
	}
	batch := map[string]any{"items": []item{{Value: "acc_4"}, {Value: "acc_3"}, {Value: "acc_2"}, {Value: "acc_5"}}}
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/vip/items", batch, nil)
	var e apiError
	h.must(http.StatusBadRequest, http.MethodPost, "/admin/lists/vip/items", map[string]any{"items": []item{{Value: "acc_9"}, {}}}, &e)
	if e.Field != "items[1].value" {
		t.Errorf("field = %q, want items[1].value", e.Field)
	}
	h.must(http.StatusBadRequest, http.MethodPost, "/admin/lists/vip/items", map[string]string{"value": "x", "expires_at": "tomorrow"}, &e)
	if e.Field != "expires_at" {
		t.Errorf("field = %q, want expires_at", e.Field)
	}
	h.must(http.StatusBadRequest, http.MethodPost, "/admin/lists/vip/items", item{Value: "x", ExpiresAt: time.Now().Add(-time.Hour)}, &e)
	if e.Field != "expires_at" || e.Code != "in_past" {
		t.Errorf("error = %+v, want in_past on expires_at", e)
	}
	h.must(http.StatusNotFound, http.MethodPost, "/admin/lists/nope/items", item{Value: "x"}, nil)

	var page struct {
		Items     []item
		NextAfter string `json:"next_after"`
	}
	var values []string
	for after := ""; ; {
		page.NextAfter = ""
		h.must(http.StatusOK, http.MethodGet, "/admin/lists/vip/items?limit=2&after="+after, nil, &page)
		for _, it := range page.Items {
			values = append(values, it.Value)
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if want := []string{"acc_1", "acc_2", "acc_3", "acc_4", "acc_5"}; !reflect.DeepEqual(values, want) {
		t.Errorf("paged values %v, want %v", values, want)
	}
	h.must(http.StatusBadRequest, http.MethodGet, "/admin/lists/vip/items?limit=5000", nil, nil)

	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/vip/items/acc_3", nil, nil)
	h.must(http.StatusNotFound, http.MethodDelete, "/admin/lists/vip/items/acc_3", nil, nil)
	h.must(http.StatusOK, http.MethodGet, "/admin/lists/vip", nil, &l)
	if l.Items != 4 {
		t.Errorf("items = %d, want 4", l.Items)
	}

	// CIDR values hold a '/': escaped, plain, or as ?value=.
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/office_ips/items", map[string]any{"items": []item{
		{Value: "10.1.2.3/16"}, {Value: "192.0.2.0/24"}, {Value: "2001:db8::/32"}, {Value: "198.51.100.7"},
	}}, &added)
	if got := []string{added.Items[0].Value, added.Items[3].Value}; !reflect.DeepEqual(got, []string{"10.1.0.0/16", "198.51.100.7"}) {
		t.Errorf("stored values %v", got)
	}
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/office_ips/items/10.1.0.0%2F16", nil, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/office_ips/items/192.0.2.0/24", nil, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/office_ips/items?value=2001:db8::/32", nil, nil)
	h.must(http.StatusBadRequest, http.MethodDelete, "/admin/lists/office_ips/items", nil, nil)
	h.must(http.StatusOK, http.MethodGet, "/admin/lists/office_ips", nil, &l)
	if l.Items != 1 {
		t.Errorf("office_ips holds %d items, want 1", l.Items)
	}

	// A list a live rule names is not deleted.
	h.must(http.StatusConflict, http.MethodDelete, "/admin/lists/blocked_cards", nil, &e)
	if want := `list "blocked_cards" is used by live rule "blocked_card": conflict`; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	h.must(http.StatusOK, http.MethodGet, "/admin/lists/paused_countries", nil, &l)
	if !reflect.DeepEqual(l.UsedBy, []string{"paused_bin_or_country"}) {
		t.Errorf("used_by = %v", l.UsedBy)
	}
	// Deleting "vip" leaves "vip_accounts" alone, also once reloaded.
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/vip_accounts/items", item{Value: "acc_1"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/vip", nil, nil)
	h.must(http.StatusNotFound, http.MethodGet, "/admin/lists/vip", nil, nil)
	reloaded := features.NewLists(h.store.KV(), nil)
	if err := reloaded.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := reloaded.Get("vip"); err == nil {
		t.Error("vip survived its deletion")
	}
	if got, err := reloaded.Get("vip_accounts"); err != nil || got.Items != 1 {
		t.Errorf("vip_accounts after deleting vip: %+v, %v", got, err)
	}
	var all struct{ Lists []listInfo }
	h.must(http.StatusOK, http.MethodGet, "/admin/lists", nil, &all)
	if len(all.Lists) != 7 || all.Lists[0].Name != "blocked_cards" {
		t.Errorf("lists = %+v", all.Lists)
	}
}

// TestListUseCases covers the lists analysts keep: a block list, an allow
// list that beats it, and an emergency pause that expires. Each is live for
// the next decision, without a publish.
func TestListUseCases(t *testing.T) {
	h := newHarness(t)
	if d := h.decide(payment()); d.Decision != "allow" {
		t.Fatalf("baseline decision %+v", d)
	}
	// Block list of cards.
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/blocked_cards/items", item{Value: "fp_9a", Reason: "chargeback"}, nil)
	if d := h.decide(payment()); d.Decision != "deny" || len(d.Reasons) == 0 || d.Reasons[0].Code != "card_blocked" {
		t.Errorf("blocked card: %+v, want deny card_blocked", d)
	}
	// VIP allow list wins over the block list.
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/vip_accounts/items", item{Value: "acc_42"}, nil)
	if d := h.decide(payment()); d.Decision != "allow" || len(d.Reasons) == 0 || d.Reasons[0].Code != "vip_account" {
		t.Errorf("VIP with blocked card: %+v, want allow vip_account", d)
	}
	other := func() map[string]any {
		return with(with(payment(), "account.id", "acc_other"), "card.fingerprint", "fp_other")
	}
	// Emergency pause of a country and a BIN, for one hour.
	until := h.clock.Now().Add(time.Hour)
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/paused_countries/items", item{Value: "RU", ExpiresAt: until, Reason: "attack"}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/paused_bins/items", item{Value: "520000", ExpiresAt: until}, nil)
	if d := h.decide(with(other(), "device.ip_country", "RU")); d.Decision != "deny" || d.Reasons[0].Code != "paused" {
		t.Errorf("paused country: %+v, want deny paused", d)
	}
	if d := h.decide(with(other(), "card.bin", "520000")); d.Decision != "deny" {
		t.Errorf("paused BIN: %+v, want deny", d)
	}
	if d := h.decide(other()); d.Decision != "allow" {
		t.Errorf("unpaused: %+v, want allow", d)
	}
	if v := h.liveVersion(); v != 1 {
		t.Errorf("live version %d: lists must not need a publish", v)
	}
	// Once expired, the pause no longer applies nor lists.
	h.clock.Advance(time.Hour + time.Second)
	if d := h.decide(with(with(other(), "device.ip_country", "RU"), "card.country", "RU")); d.Decision != "allow" {
		t.Errorf("expired pause: %+v, want allow", d)
	}
	var l listInfo
	h.must(http.StatusOK, http.MethodGet, "/admin/lists/paused_countries", nil, &l)
	if l.Items != 0 {
		t.Errorf("expired list counts %d items", l.Items)
	}
	var page struct{ Items []item }
	h.must(http.StatusOK, http.MethodGet, "/admin/lists/paused_bins/items", nil, &page)
	if len(page.Items) != 0 {
		t.Errorf("expired items listed: %+v", page.Items)
	}
}

// TestCIDRList10k loads 10,000 ranges of mixed lengths into the sample's
// blocked_ips list and checks membership at the edges of ranges.
func TestCIDRList10k(t *testing.T) {
	h := newHarness(t)
	var items []item
	for i := range 9000 { // 10.0.0.0/24 ... 10.35.39.0/24
		items = append(items, item{Value: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)})
	}
	for i := range 900 { // 172.16.0.0/16 ... 175.147.0.0/16
		items = append(items, item{Value: fmt.Sprintf("%d.%d.0.0/16", 172+i/256, i%256)})
	}
	for i := range 96 {
		items = append(items, item{Value: fmt.Sprintf("192.0.2.%d", i*2)})
	}
	items = append(items, item{Value: "2001:db8::/48"}, item{Value: "::ffff:198.18.0.0/111"}, item{Value: "100.64.0.0/10"}, item{Value: "2001:db8:ffff::1"})
	if len(items) != 10000 {
		t.Fatalf("%d items", len(items))
	}
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/blocked_ips/items", map[string]any{"items": items}, nil)

	tests := []struct {
		ip   string
		want bool
	}{
		{"10.0.0.0", true}, {"10.0.0.255", true}, {"10.35.39.200", true}, {"10.35.40.1", false},
		{"10.200.0.1", false}, {"172.16.0.1", true}, {"175.131.255.255", true}, {"175.132.0.0", false},
		{"192.0.2.94", true}, {"192.0.2.95", false}, {"192.0.2.190", true}, {"192.0.2.192", false},
		{"100.127.255.255", true}, {"100.128.0.0", false}, {"198.19.255.255", true}, {"198.20.0.0", false},
		{"::ffff:10.0.0.9", true}, {"2001:db8::1", true}, {"2001:db8:0:ffff::1", true}, {"2001:db8:1::1", false},
		{"2001:db8:ffff::1", true}, {"2001:db8:ffff::2", false}, {"198.51.100.1", true}, {"not-an-ip", false},
	}
	for _, tt := range tests {
		if got := h.lists.Contains("blocked_ips", tt.ip); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	// And through a decision: the sample's blocked_ip rule.
	for i, tt := range tests[:4] {
		d := h.decide(with(with(payment(), "device.ip", tt.ip), "card.fingerprint", fmt.Sprintf("fp_%d", i)))
		if got := d.Decision == "deny"; got != tt.want {
			t.Errorf("decision for %s = %s, want deny %v", tt.ip, d.Decision, tt.want)
		}
	}
}
