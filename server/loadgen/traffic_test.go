package loadgen_test

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// decisionRequest is the POST /v1/decisions contract, decoded strictly.
type decisionRequest struct {
	TransactionID string `json:"transaction_id"`
	OccurredAt    string `json:"occurred_at"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	Account       struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		CreatedAt string `json:"created_at"`
		Country   string `json:"country"`
	} `json:"account"`
	Card struct {
		Fingerprint string `json:"fingerprint"`
		BIN         string `json:"bin"`
		Country     string `json:"country"`
	} `json:"card"`
	Device struct {
		ID        string `json:"id"`
		IP        string `json:"ip"`
		IPCountry string `json:"ip_country"`
	} `json:"device"`
	Merchant struct {
		ID      string `json:"id"`
		MCC     string `json:"mcc"`
		Country string `json:"country"`
	} `json:"merchant"`
	Attributes struct {
		Channel string   `json:"channel"`
		Items   *float64 `json:"items"`
	} `json:"attributes"`
}

func decode(tb testing.TB, body []byte) decisionRequest {
	tb.Helper()
	var req decisionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		tb.Fatalf("body is not a valid decision request: %v\n%s", err, body)
	}
	if dec.More() {
		tb.Fatalf("trailing data after the JSON body:\n%s", body)
	}
	return req
}

var (
	alpha2   = regexp.MustCompile(`^[A-Z]{2}$`)
	alpha3   = regexp.MustCompile(`^[A-Z]{3}$`)
	digits   = regexp.MustCompile(`^[0-9]+$`)
	emailish = regexp.MustCompile(`^[a-z0-9]+@example\.(com|net)$`)
)

func TestRunSendsValidBodies(t *testing.T) {
	t.Parallel()
	srv := newTarget(t, allow)
	began := time.Now()
	mustRun(t, srv.URL, "--rate", "400", "--duration", "500ms", "--attack-ratio", "0.3", "--retry-ratio", "0.05", "--accounts", "50")
	reqs := srv.received()
	if len(reqs) < 150 {
		t.Fatalf("server saw %d requests, want about 200", len(reqs))
	}
	for _, r := range reqs {
		if got := r.header.Get("Content-Type"); got != "application/json" {
			t.Fatalf("Content-Type = %q, want application/json", got)
		}
		req := decode(t, r.body)
		problems := check(req, began)
		if len(problems) > 0 {
			t.Fatalf("invalid body (%s):\n%s", strings.Join(problems, "; "), r.body)
		}
	}
}

// check returns what is wrong with req.
func check(req decisionRequest, began time.Time) []string {
	var p []string
	fail := func(ok bool, msg string) {
		if !ok {
			p = append(p, msg)
		}
	}
	fail(strings.HasPrefix(req.TransactionID, "tx_") && len(req.TransactionID) <= 128, "transaction_id")
	at, err := time.Parse(time.RFC3339, req.OccurredAt)
	fail(err == nil && at.Location() == time.UTC && !at.Before(began.Truncate(time.Second)) && at.Before(time.Now().Add(time.Second)), "occurred_at")
	fail(req.Amount > 0, "amount")
	fail(alpha3.MatchString(req.Currency), "currency")
	fail(strings.HasPrefix(req.Account.ID, "acc_"), "account.id")
	fail(emailish.MatchString(req.Account.Email), "account.email")
	created, err := time.Parse(time.RFC3339, req.Account.CreatedAt)
	fail(err == nil && created.Before(time.Now()) && created.Year() >= 2019, "account.created_at")
	fail(alpha2.MatchString(req.Account.Country), "account.country")
	fail(strings.HasPrefix(req.Card.Fingerprint, "fp_"), "card.fingerprint")
	fail(len(req.Card.BIN) == 6 && digits.MatchString(req.Card.BIN), "card.bin")
	fail(alpha2.MatchString(req.Card.Country), "card.country")
	fail(strings.HasPrefix(req.Device.ID, "dev_"), "device.id")
	ip := net.ParseIP(req.Device.IP)
	fail(ip != nil && ip.To4() != nil && !ip.IsPrivate() && !ip.IsLoopback(), "device.ip")
	fail(alpha2.MatchString(req.Device.IPCountry), "device.ip_country")
	fail(strings.HasPrefix(req.Merchant.ID, "m_"), "merchant.id")
	fail(len(req.Merchant.MCC) == 4 && digits.MatchString(req.Merchant.MCC), "merchant.mcc")
	fail(alpha2.MatchString(req.Merchant.Country), "merchant.country")
	fail(req.Attributes.Channel != "", "attributes.channel")
	fail(req.Attributes.Items != nil && *req.Attributes.Items >= 1, "attributes.items")
	return p
}

func TestRunRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ratio              string
		minShare, maxShare float64 // of requests that repeat an earlier id
	}{
		{"0", 0, 0},
		{"0.2", 0.1, 0.3},
	}
	for _, tt := range tests {
		t.Run("ratio "+tt.ratio, func(t *testing.T) {
			t.Parallel()
			srv := newTarget(t, allow)
			mustRun(t, srv.URL, "--rate", "400", "--duration", "500ms", "--retry-ratio", tt.ratio)
			reqs := srv.received()
			first := map[string][]byte{}
			repeats := 0
			for _, r := range reqs {
				id := decode(t, r.body).TransactionID
				prev, seen := first[id]
				if !seen {
					first[id] = r.body
					continue
				}
				repeats++
				if !bytes.Equal(prev, r.body) {
					t.Fatalf("transaction %s resent with a different body:\n%s\n%s", id, prev, r.body)
				}
			}
			share := float64(repeats) / float64(len(reqs))
			if share < tt.minShare || share > tt.maxShare {
				t.Errorf("%d of %d requests repeat a transaction id (%.3f), want a share in [%v, %v]",
					repeats, len(reqs), share, tt.minShare, tt.maxShare)
			}
		})
	}
}

func TestRunTransactionIDsUniqueAcrossRuns(t *testing.T) {
	t.Parallel()
	srv := newTarget(t, allow)
	for range 2 {
		mustRun(t, srv.URL, "--rate", "100", "--duration", "100ms", "--retry-ratio", "0")
	}
	seen := map[string]bool{}
	for _, r := range srv.received() {
		id := decode(t, r.body).TransactionID
		if seen[id] {
			t.Fatalf("transaction id %s sent twice by two runs with the same seed", id)
		}
		seen[id] = true
	}
}

// Card-testing bursts: one card, many small amounts, in a short time.
// Ordinary payments are never below 5.00, so small amounts mark attempts.
func TestRunCardTestingBursts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ratio              string
		minShare, maxShare float64
	}{
		{"0", 0, 0},
		{"0.5", 0.4, 0.6},
	}
	for _, tt := range tests {
		t.Run("ratio "+tt.ratio, func(t *testing.T) {
			t.Parallel()
			srv := newTarget(t, allow)
			mustRun(t, srv.URL, "--rate", "400", "--duration", "500ms", "--attack-ratio", tt.ratio, "--retry-ratio", "0")
			type card struct {
				n, small         int
				devices, account map[string]bool
			}
			cards := map[string]*card{}
			reqs := srv.received()
			attempts := 0
			for _, r := range reqs {
				req := decode(t, r.body)
				c := cards[req.Card.Fingerprint]
				if c == nil {
					c = &card{devices: map[string]bool{}, account: map[string]bool{}}
					cards[req.Card.Fingerprint] = c
				}
				c.n++
				if req.Amount <= 300 {
					c.small++
					attempts++
					c.devices[req.Device.ID] = true
					c.account[req.Account.ID] = true
				}
			}
			attackCards := 0
			for fp, c := range cards {
				if c.small == 0 {
					continue
				}
				attackCards++
				if c.small != c.n || len(c.devices) != 1 || len(c.account) != 1 {
					t.Errorf("card %s: %d of %d payments small, %d devices, %d accounts; want all small from one device and account",
						fp, c.small, c.n, len(c.devices), len(c.account))
				}
			}
			share := float64(attempts) / float64(len(reqs))
			if share < tt.minShare || share > tt.maxShare {
				t.Errorf("%d of %d payments are card-testing attempts (%.3f), want a share in [%v, %v]",
					attempts, len(reqs), share, tt.minShare, tt.maxShare)
			}
			if attackCards > 0 && attempts < 3*attackCards {
				t.Errorf("%d attempts over %d cards, want bursts of several attempts per card", attempts, attackCards)
			}
		})
	}
}

// The same seed sends the same payments, apart from ids and clock. The
// number after the run prefix of a transaction id is its place in the
// sequence, whatever order the requests arrive in.
func TestRunDeterministicTraffic(t *testing.T) {
	t.Parallel()
	run := func(seed string) map[string]string {
		srv := newTarget(t, allow)
		mustRun(t, srv.URL, "--rate", "200", "--duration", "250ms", "--seed", seed, "--retry-ratio", "0")
		got := map[string]string{}
		for _, r := range srv.received() {
			req := decode(t, r.body)
			seq := req.TransactionID[strings.LastIndexByte(req.TransactionID, '_')+1:]
			req.TransactionID, req.OccurredAt = "", ""
			b, _ := json.Marshal(req)
			got[seq] = string(b)
		}
		return got
	}
	a, b, c := run("7"), run("7"), run("8")
	same, differ := 0, 0
	for seq, body := range a {
		if other, ok := b[seq]; ok {
			same++
			if other != body {
				t.Fatalf("payment %s differs between runs with seed 7:\n%s\n%s", seq, body, other)
			}
		}
		if other, ok := c[seq]; ok && other != body {
			differ++
		}
	}
	if same < 25 {
		t.Errorf("runs with seed 7 have %d payments in common, want about 50", same)
	}
	if differ == 0 {
		t.Errorf("seed 8 sent the same payments as seed 7")
	}
}
