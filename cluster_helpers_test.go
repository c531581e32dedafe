package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/features/postgres/pgtest"
	"github.com/riskengine/risk/features/redisstate/redistest"
)

// clusterEnv is one test's cluster: its own PostgreSQL schema and Redis
// key prefix on the machine's servers, so cluster tests run in parallel.
type clusterEnv struct {
	t      *testing.T
	bin    string
	flags  []string
	pgURL  string // with the schema's search_path
	redis  string
	prefix string
}

// newClusterEnv prepares a schema and a prefix, removed when t ends, and
// builds the binary the nodes run.
func newClusterEnv(t *testing.T, bin string) *clusterEnv {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	addr := redistest.Addr(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "t" + hex.EncodeToString(b[:])
	t.Cleanup(func() { dropRedisPrefix(t, addr, prefix) })
	return &clusterEnv{
		t: t, bin: bin, redis: addr, prefix: prefix, pgURL: url + "&search_path=" + schema,
		flags: []string{"--postgres", url + "&search_path=" + schema, "--redis", "redis://" + addr + "/0", "--redis-prefix", prefix},
	}
}

// dropRedisPrefix deletes every key of a test's prefix.
func dropRedisPrefix(t *testing.T, addr, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := redistest.DeleteKeys(c, prefix); err != nil {
		t.Errorf("clean redis prefix %s: %v", prefix, err)
	}
}

// node starts one engine node of the cluster.
func (e *clusterEnv) node(extra ...string) *proc {
	e.t.Helper()
	return startServer(e.t, e.bin, e.t.TempDir(), append(e.serveFlags(), extra...)...)
}

// serveFlags are the flags of a node: the cluster's, and a generous
// decision budget — the tests compare exact values, and a busy CI machine
// must not turn a slow Redis read into a degraded decision
// (TestClusterFaults cuts the servers instead).
func (e *clusterEnv) serveFlags() []string {
	return append(append([]string{}, e.flags...), "--budget", "5s")
}

// nodes starts n nodes.
func (e *clusterEnv) nodes(n int) []*proc {
	out := make([]*proc, n)
	for i := range out {
		out[i] = e.node()
	}
	return out
}

// call sends a JSON request with key to url and decodes the answer into
// out (when not nil); it returns the status, failing the test when the
// request gets no answer.
func call(t *testing.T, key, method, url string, body, out any) int {
	t.Helper()
	code, err := tryCall(key, method, url, body, out)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
	}
	return code
}

// tryCall is call for a server that may be gone: it returns the error.
func tryCall(key, method, url string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%d %s: %w", resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, nil
}

// decisionJSON is the part of a decision answer the cluster tests read.
type decisionJSON struct {
	DecisionID     string  `json:"decision_id"`
	TransactionID  string  `json:"transaction_id"`
	Decision       string  `json:"decision"`
	Score          float64 `json:"score"`
	RulesetVersion int64   `json:"ruleset_version"`
	Degraded       bool    `json:"degraded"`
	DegradedCause  string  `json:"degraded_cause"`
	Reasons        []struct {
		Rule string `json:"rule"`
	} `json:"reasons"`
	Features []struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Ready bool    `json:"ready"`
	} `json:"features"`
	Limits struct {
		DailySpent int64   `json:"daily_spent"`
		DailyMax   int64   `json:"daily_max"`
		Trust      float64 `json:"trust"`
	} `json:"limits"`
}

// feature returns the value of a feature in an explanation.
func (d decisionJSON) feature(name string) (float64, bool) {
	for _, f := range d.Features {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// clusterPayment is a payment on card (and account acc_<card>) at.
func clusterPayment(tx, card string, amount int, at time.Time) map[string]any {
	return map[string]any{
		"transaction_id": tx, "amount": amount, "currency": "USD", "occurred_at": at.UTC().Format(time.RFC3339Nano),
		"account":  map[string]any{"id": "acc_" + card, "email": card + "@example.com", "created_at": "2025-01-02T00:00:00Z", "country": "US"},
		"card":     map[string]any{"fingerprint": card, "bin": "411111", "country": "US"},
		"device":   map[string]any{"id": "dev_" + card, "ip": "203.0.113.7", "ip_country": "US"},
		"merchant": map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
	}
}

// decide posts p to node and returns the answer; it fails the test on a
// status other than 200.
func decide(t *testing.T, node *proc, p map[string]any) decisionJSON {
	t.Helper()
	var d decisionJSON
	if code := call(t, testAdminKey, http.MethodPost, node.url+"/v1/decisions", p, &d); code != http.StatusOK {
		t.Fatalf("decision %v on %s = %d", p["transaction_id"], node.url, code)
	}
	return d
}

// explain reads a decision's full explanation from node.
func explain(t *testing.T, node *proc, id string) decisionJSON {
	t.Helper()
	var d decisionJSON
	if code := call(t, testAdminKey, http.MethodGet, node.url+"/v1/decisions/"+id, nil, &d); code != http.StatusOK {
		t.Fatalf("GET decision %s on %s = %d", id, node.url, code)
	}
	return d
}

// eventually polls cond every 20 ms until it holds or limit passes, and
// returns how long it took; the test fails at the limit.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// proxy is a TCP proxy in front of a server that a test can cut and
// restore: the network failure between a node and PostgreSQL or Redis.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

// newProxy listens on a free loopback port and forwards to target.
func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

// addr is where clients connect.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every open connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore accepts connections again.
func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// proxiedFlags are the cluster flags with PostgreSQL and Redis reached
// through proxies the test can cut.
func (e *clusterEnv) proxiedFlags() (flags []string, pg, rd *proxy) {
	e.t.Helper()
	u, err := url.Parse(e.pgURL)
	if err != nil {
		e.t.Fatal(err)
	}
	pg, rd = newProxy(e.t, u.Host), newProxy(e.t, e.redis)
	u.Host = pg.addr()
	return []string{"--postgres", u.String(), "--redis", "redis://" + rd.addr() + "/0", "--redis-prefix", e.prefix, "--budget", "5s"}, pg, rd
}

// txSeq numbers the transactions of polling loops.
var txSeq atomic.Int64

// nextTx is a fresh transaction id: prefix and a small counter, never a
// long digit run (the engine refuses anything that looks like a card
// number, a nanosecond timestamp included).
func nextTx(prefix string) string { return fmt.Sprintf("%s_%d", prefix, txSeq.Add(1)) }
