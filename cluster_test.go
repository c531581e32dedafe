package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterExactAndIdempotentAcrossNodes: decisions on one card spread
// over three nodes are counted exactly, a retry on another node answers
// the same decision and is counted once, and the same id with another body
// is refused on every node.
func TestClusterExactAndIdempotentAcrossNodes(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	nodes := env.nodes(3)
	at := time.Now().UTC()
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decide(t, nodes[i%3], clusterPayment(fmt.Sprintf("tx_exact_%d", i), "fp_exact", 1000, at))
		}()
	}
	wg.Wait()
	for i, nd := range nodes {
		d := decide(t, nd, clusterPayment(fmt.Sprintf("tx_exact_next_%d", i), "fp_exact", 1000, at))
		got, ok := explain(t, nd, d.DecisionID).feature("card_attempts_10m")
		if !ok || got != float64(n+i) {
			t.Errorf("node %d: card_attempts_10m = %v (present %v), want %d: the earlier decisions on every node, not this one", i, got, ok, n+i)
		}
	}

	// One transaction sent to every node at once, several times.
	var (
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for i := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := decide(t, nodes[i%3], clusterPayment("tx_retry", "fp_retry", 1000, at))
			mu.Lock()
			ids[d.DecisionID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Errorf("retries answered %d different decisions, want one: %v", len(ids), ids)
	}
	d := decide(t, nodes[1], clusterPayment("tx_retry_next", "fp_retry", 1000, at))
	if got, _ := explain(t, nodes[1], d.DecisionID).feature("card_attempts_10m"); got != 1 {
		t.Errorf("after nine deliveries of one transaction card_attempts_10m = %v, want 1", got)
	}
	for i, nd := range nodes {
		if code := call(t, testAdminKey, http.MethodPost, nd.url+"/v1/decisions", clusterPayment("tx_retry", "fp_retry", 2000, at), nil); code != http.StatusConflict {
			t.Errorf("node %d: same transaction id, another amount = %d, want 409", i, code)
		}
	}
}

// TestClusterChangesReachEveryNode: a publish, a list item and a key
// revocation made on one node take effect on the others without a restart.
func TestClusterChangesReachEveryNode(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	nodes := env.nodes(3)
	at := time.Now().UTC()

	// Node 0 publishes a draft with another challenge threshold.
	if code := call(t, testAdminKey, http.MethodPut, nodes[0].url+"/admin/ruleset/draft", map[string]any{"challenge_threshold": 55}, nil); code != http.StatusOK {
		t.Fatalf("update draft = %d", code)
	}
	var ver struct {
		Version int64 `json:"version"`
	}
	if code := call(t, testAdminKey, http.MethodPost, nodes[0].url+"/admin/ruleset/publish", map[string]any{"comment": "cluster test"}, &ver); (code != http.StatusOK && code != http.StatusCreated) || ver.Version < 2 {
		t.Fatalf("publish = %d, version %d", code, ver.Version)
	}
	for i, nd := range nodes[1:] {
		took := eventually(t, fmt.Sprintf("node %d runs version %d", i+1, ver.Version), 10*time.Second, func() bool {
			return decide(t, nd, clusterPayment(nextTx("tx_ver"), "fp_ver", 100, at)).RulesetVersion == ver.Version
		})
		t.Logf("node %d ran the new version after %v", i+1, took)
	}

	// A card blocked on node 1 is denied on node 2.
	if code := call(t, testAdminKey, http.MethodPost, nodes[1].url+"/admin/lists/blocked_cards/items", map[string]any{"value": "fp_stolen"}, nil); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("add list item = %d", code)
	}
	took := eventually(t, "node 2 denies the blocked card", 10*time.Second, func() bool {
		d := decide(t, nodes[2], clusterPayment(nextTx("tx_blk"), "fp_stolen", 100, at))
		for _, r := range d.Reasons {
			if r.Rule == "blocked_card" {
				return true
			}
		}
		return false
	})
	t.Logf("node 2 denied the blocked card after %v", took)

	// A key created on node 0 works on node 2 until node 1 revokes it.
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if code := call(t, testAdminKey, http.MethodPost, nodes[0].url+"/admin/keys", map[string]any{"name": "gw", "role": "gateway"}, &key); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("create key = %d", code)
	}
	eventually(t, "node 2 accepts the new key", 10*time.Second, func() bool {
		return call(t, key.Key, http.MethodGet, nodes[2].url+"/v1/decisions/dec_none", nil, nil) != http.StatusUnauthorized
	})
	if code := call(t, testAdminKey, http.MethodDelete, nodes[1].url+"/admin/keys/"+key.ID, nil, nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("revoke key = %d", code)
	}
	took = eventually(t, "node 2 refuses the revoked key", 10*time.Second, func() bool {
		return call(t, key.Key, http.MethodPost, nodes[2].url+"/v1/decisions", clusterPayment("tx_revoked", "fp_rev", 100, at), nil) == http.StatusUnauthorized
	})
	t.Logf("node 2 refused the revoked key after %v", took)

	// A backtest started on node 0 is followed, to its result, on node 2
	// and listed on node 1: the console and scripts need not keep to one
	// node.
	var bt struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Result *struct {
			Replayed int64 `json:"replayed"`
		} `json:"result"`
	}
	window := map[string]any{"candidate": map[string]any{"version": ver.Version},
		"from": at.Add(-time.Hour).Format(time.RFC3339), "to": at.Add(time.Hour).Format(time.RFC3339)}
	if code := call(t, testAdminKey, http.MethodPost, nodes[0].url+"/admin/backtests", window, &bt); code != http.StatusAccepted {
		t.Fatalf("start backtest = %d", code)
	}
	eventually(t, "node 2 shows the backtest done", 20*time.Second, func() bool {
		return call(t, testAdminKey, http.MethodGet, nodes[2].url+"/admin/backtests/"+bt.ID, nil, &bt) == http.StatusOK && bt.State == "done"
	})
	if bt.Result == nil || bt.Result.Replayed == 0 {
		t.Errorf("backtest read on node 2 has result %+v, want the replayed decisions", bt.Result)
	}
	var list struct {
		Backtests []struct {
			ID string `json:"id"`
		} `json:"backtests"`
	}
	if code := call(t, testAdminKey, http.MethodGet, nodes[1].url+"/admin/backtests", nil, &list); code != http.StatusOK ||
		len(list.Backtests) != 1 || list.Backtests[0].ID != bt.ID {
		t.Errorf("node 1 lists %+v (%d), want the backtest node 0 ran", list.Backtests, code)
	}

	checkConsoleAcrossNodes(t, env, nodes)

	if code := call(t, testAdminKey, http.MethodGet, nodes[0].url+"/admin/backup", nil, nil); code != http.StatusNotImplemented {
		t.Errorf("GET /admin/backup on a cluster node = %d, want 501 (pg_dump backs a cluster up)", code)
	}
}

// TestClusterSameAnswersAsSingleNode: one payment stream decided by a
// single Badger node and by a three-node cluster gives the same outcomes,
// scores and feature values.
func TestClusterSameAnswersAsSingleNode(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	single := startServer(t, bin, t.TempDir(), "--budget", "5s")
	env := newClusterEnv(t, bin)
	nodes := env.nodes(3)
	start := time.Now().UTC().Add(-2 * time.Hour)
	cards := []string{"fp_a", "fp_b", "fp_c"}
	for i := range 45 {
		p := clusterPayment(fmt.Sprintf("tx_same_%d", i), cards[i%len(cards)], 500+(i%7)*4000, start.Add(time.Duration(i)*2*time.Minute))
		if i%5 == 0 {
			p["device"] = map[string]any{"id": "dev_shared", "ip": "198.51.100.9", "ip_country": "FR"}
		}
		one := explain(t, single, decide(t, single, p).DecisionID)
		many := explain(t, nodes[i%3], decide(t, nodes[i%3], p).DecisionID)
		if i == 20 {
			// Fraud on this decision lowers the account's trust and may
			// block the card: the later payments must see the same on both.
			for _, side := range []struct {
				n  *proc
				id string
			}{{single, one.DecisionID}, {nodes[(i+1)%3], many.DecisionID}} {
				if code := call(t, testAdminKey, http.MethodPost, side.n.url+"/v1/decisions/"+side.id+"/feedback", map[string]any{"label": "fraud"}, nil); code != http.StatusOK && code != http.StatusCreated {
					t.Fatalf("feedback = %d", code)
				}
			}
		}
		if one.Decision != many.Decision || one.Score != many.Score {
			t.Errorf("tx_same_%d: single node %s/%v, cluster %s/%v", i, one.Decision, one.Score, many.Decision, many.Score)
		}
		if len(one.Features) != len(many.Features) || len(one.Features) == 0 {
			t.Fatalf("tx_same_%d: %d features on the single node, %d on the cluster", i, len(one.Features), len(many.Features))
		}
		for j, f := range one.Features {
			g := many.Features[j]
			if f.Name != g.Name || f.Value != g.Value || f.Ready != g.Ready {
				t.Errorf("tx_same_%d: feature %s = %v (ready %v) on the single node, %s = %v (ready %v) on the cluster", i, f.Name, f.Value, f.Ready, g.Name, g.Value, g.Ready)
			}
		}
		if one.Limits != many.Limits {
			t.Errorf("tx_same_%d: limits %+v on the single node, %+v on the cluster", i, one.Limits, many.Limits)
		}
		if i > 21 && i%3 == 2 && one.Limits.Trust >= 1 {
			t.Errorf("tx_same_%d: trust %v after a fraud label on the account, want it lowered", i, one.Limits.Trust)
		}
	}
}

// TestClusterNeedsBothStores: one of PostgreSQL and Redis without the other
// stops the start with a message and exit status 1.
func TestClusterNeedsBothStores(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"--postgres", "postgres://risk@127.0.0.1:5432/risk"},
		{"--redis", "redis://127.0.0.1:6379/0"},
		{"--redis-cluster", "127.0.0.1:7000"},
	} {
		out, err := runCLI(bin, "", append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
		code := -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
		if code != 1 || !strings.Contains(out, "cluster mode needs") {
			t.Errorf("%v: exit %d, output %q; want exit 1 and a message naming the missing store", args, code, out)
		}
	}
}

// TestClusterFaults: with Redis or PostgreSQL unreachable a node still
// answers every payment, degraded, and /readyz drains it; both recover
// without a restart.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	flags, pg, rd := env.proxiedFlags()
	nd := startServer(t, env.bin, t.TempDir(), flags...)
	at := time.Now().UTC()
	status := func(path string) int { return call(t, "", http.MethodGet, nd.url+path, nil, nil) }
	if d := decide(t, nd, clusterPayment("tx_f_ok", "fp_f", 100, at)); d.Degraded {
		t.Fatalf("healthy cluster: degraded %s", d.DegradedCause)
	}

	rd.cut()
	d := decide(t, nd, clusterPayment("tx_f_redis", "fp_f", 100, at))
	if !d.Degraded || d.DegradedCause == "" {
		t.Errorf("Redis down: degraded %v cause %q, want a degraded answer with its cause", d.Degraded, d.DegradedCause)
	}
	if got := explain(t, nd, d.DecisionID); !got.Degraded {
		t.Errorf("Redis down: the stored decision is not marked degraded")
	}
	if code := status("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("Redis down: /readyz = %d, want 503", code)
	}
	if code := status("/healthz"); code != http.StatusOK {
		t.Errorf("Redis down: /healthz = %d, want 200", code)
	}
	rd.restore()
	eventually(t, "ready again after Redis returns", 15*time.Second, func() bool { return status("/readyz") == http.StatusOK })
	eventually(t, "whole decisions after Redis returns", 15*time.Second, func() bool {
		return !decide(t, nd, clusterPayment(nextTx("tx_f_r"), "fp_f", 100, at)).Degraded
	})

	pg.cut()
	d = decide(t, nd, clusterPayment("tx_f_pg", "fp_f", 100, at))
	if !d.Degraded || d.DegradedCause != "decision_store_unavailable" {
		t.Errorf("PostgreSQL down: degraded %v cause %q, want decision_store_unavailable", d.Degraded, d.DegradedCause)
	}
	if code := status("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("PostgreSQL down: /readyz = %d, want 503", code)
	}
	pg.restore()
	eventually(t, "ready again after PostgreSQL returns", 15*time.Second, func() bool { return status("/readyz") == http.StatusOK })
	d = decide(t, nd, clusterPayment("tx_f_pg_back", "fp_f", 100, at))
	if d.Degraded {
		t.Errorf("after PostgreSQL returned: degraded %s", d.DegradedCause)
	}
	explain(t, nd, d.DecisionID)
	if code := call(t, testAdminKey, http.MethodGet, nd.url+"/v1/decisions?transaction_id=tx_f_pg", nil, nil); code != http.StatusOK {
		t.Errorf("search = %d", code)
	}
}

// TestClusterKill9UnderLoad: a node killed with SIGKILL under load loses no
// acknowledged decision: each is readable on another node and a retry
// there answers the same decision.
func TestClusterKill9UnderLoad(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	victim, survivor := env.node(), env.node()
	at := time.Now().UTC()
	var (
		mu    sync.Mutex
		acked = map[string]string{} // transaction id -> decision id
		sent  = map[string]int{}    // transaction id -> worker
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tx := fmt.Sprintf("tx_k9_%d_%d", w, i)
				var d decisionJSON
				mu.Lock()
				sent[tx] = w
				mu.Unlock()
				code, err := tryCall(testAdminKey, http.MethodPost, victim.url+"/v1/decisions", clusterPayment(tx, fmt.Sprintf("fp_k9_%d", w), 100, at), &d)
				if err == nil && code == http.StatusOK && !d.Degraded {
					mu.Lock()
					acked[tx] = d.DecisionID
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, "200 acknowledged decisions", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d decisions acknowledged before SIGKILL", len(acked))
	for tx, id := range acked {
		if got := explain(t, survivor, id); got.TransactionID != tx {
			t.Errorf("decision %s reads as transaction %q, want %q", id, got.TransactionID, tx)
		}
	}
	// The gateway retries everything it sent on the survivor: the
	// acknowledged ones answer as before, the ones cut off are decided.
	for tx, w := range sent {
		d := decide(t, survivor, clusterPayment(tx, fmt.Sprintf("fp_k9_%d", w), 100, at))
		if id, ok := acked[tx]; ok && d.DecisionID != id {
			t.Errorf("retry of %s on the survivor answered %s, want %s", tx, d.DecisionID, id)
		}
	}
	// Every payment of a card was counted once, whichever node counted it.
	for w := range 8 {
		n := 0
		for _, sw := range sent {
			if sw == w {
				n++
			}
		}
		d := decide(t, survivor, clusterPayment(fmt.Sprintf("tx_k9_after_%d", w), fmt.Sprintf("fp_k9_%d", w), 100, at))
		if got, _ := explain(t, survivor, d.DecisionID).feature("card_attempts_10m"); got != float64(n) {
			t.Errorf("card fp_k9_%d: card_attempts_10m = %v after %d payments, want %d", w, got, n, n)
		}
	}
}

// TestClusterOnRedisCluster: nodes on a Redis Cluster (--redis-cluster)
// count exactly across nodes too: an entity's state and marks share a
// hash slot.
func TestClusterOnRedisCluster(t *testing.T) {
	t.Parallel()
	seeds := os.Getenv("RISK_TEST_REDIS_CLUSTER")
	if seeds == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("RISK_TEST_REDIS_CLUSTER is not set (CI=true): .ci/run starts a Redis Cluster and sets it")
		}
		t.Skip("RISK_TEST_REDIS_CLUSTER is not set; start one with: bash .ci/redis-cluster start")
	}
	env := newClusterEnv(t, buildBinary(t))
	flags := []string{"--postgres", env.pgURL, "--redis-cluster", seeds, "--redis-prefix", env.prefix, "--budget", "5s"}
	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = startServer(t, env.bin, t.TempDir(), flags...)
	}
	at := time.Now().UTC()
	var wg sync.WaitGroup
	const n = 30
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decide(t, nodes[i%3], clusterPayment(fmt.Sprintf("tx_rc_%d", i), "fp_rc", 1000, at))
		}()
	}
	wg.Wait()
	d := decide(t, nodes[0], clusterPayment("tx_rc_next", "fp_rc", 1000, at))
	if d.Degraded {
		t.Fatalf("degraded on a Redis Cluster: %s", d.DegradedCause)
	}
	if got, _ := explain(t, nodes[0], d.DecisionID).feature("card_attempts_10m"); got != n {
		t.Errorf("card_attempts_10m = %v, want %d", got, n)
	}
}

// TestClusterNodesStartTogether: three nodes started at the same moment on
// an empty database all come up — one publishes the bundled rule set and
// stores the admin key, the others find them — and agree on the version.
func TestClusterNodesStartTogether(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	ports := make([]string, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	var cmds []*exec.Cmd
	for _, addr := range ports {
		cmd := exec.Command(env.bin, append([]string{"--addr", addr, "--data", t.TempDir()}, env.serveFlags()...)...)
		cmd.Env = cleanEnv("RISK_ADMIN_KEY=" + testAdminKey)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("node %s:\n%s", addr, logs.String())
			}
		})
	}
	versions := map[int64]bool{}
	for _, addr := range ports {
		eventually(t, addr+" ready", 30*time.Second, func() bool {
			code, err := tryCall("", http.MethodGet, "http://"+addr+"/readyz", nil, nil)
			return err == nil && code == http.StatusOK
		})
		var d decisionJSON
		eventually(t, addr+" accepts the admin key", 10*time.Second, func() bool {
			code, err := tryCall(testAdminKey, http.MethodPost, "http://"+addr+"/v1/decisions", clusterPayment("tx_start_"+addr, "fp_start", 100, time.Now()), &d)
			return err == nil && code == http.StatusOK
		})
		versions[d.RulesetVersion] = true
	}
	if len(versions) != 1 {
		t.Errorf("nodes decided with rule set versions %v, want one", versions)
	}
	for i, cmd := range cmds {
		if cmd.ProcessState != nil {
			t.Errorf("node %d exited: %v", i, cmd.ProcessState)
		}
	}
}

// TestClusterRebuildsAnEmptyRedis: a node that finds Redis emptied (a
// flush, a new Redis) rebuilds the feature state from PostgreSQL by
// itself; afterwards every stored decision is counted exactly once, those
// decided while it was empty included.
func TestClusterRebuildsAnEmptyRedis(t *testing.T) {
	t.Parallel()
	env := newClusterEnv(t, buildBinary(t))
	nd := env.node()
	at := time.Now().UTC()
	for range 12 {
		decide(t, nd, clusterPayment(nextTx("tx_rb"), "fp_rb", 100, at))
	}
	dropRedisPrefix(t, env.redis, env.prefix)
	// More decisions than an entity's ring remembers: counting them live
	// and again in the rebuild would count some twice.
	for range 80 {
		decide(t, nd, clusterPayment(nextTx("tx_rb"), "fp_rb", 100, at))
	}
	// A dry run reads the features without deciding: poll it until the
	// rebuild has counted the history.
	probe := map[string]any{"payment": clusterPayment("tx_rb_probe", "fp_rb", 100, at)}
	lastSeen := -1.0
	defer func() {
		if t.Failed() {
			t.Logf("card_attempts_10m last read %v, want 92", lastSeen)
		}
	}()
	took := eventually(t, "the history counted again after Redis was emptied", 60*time.Second, func() bool {
		var out struct {
			Features map[string]float64 `json:"features"`
		}
		code := call(t, testAdminKey, http.MethodPost, nd.url+"/admin/rules/dry-run", probe, &out)
		lastSeen = out.Features["card_attempts_10m"]
		return code == http.StatusOK && lastSeen == 92
	})
	t.Logf("rebuilt after %v", took)
	d := decide(t, nd, clusterPayment(nextTx("tx_rb"), "fp_rb", 100, at))
	if got, _ := explain(t, nd, d.DecisionID).feature("card_attempts_10m"); d.Degraded || got != 92 {
		t.Errorf("after the rebuild: degraded %v, card_attempts_10m %v, want 92", d.Degraded, got)
	}
}
