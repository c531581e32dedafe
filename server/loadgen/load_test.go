package loadgen_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/server/loadgen"
)

func TestRunSteadyLoad(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		// A mix of outcomes, so the counts have to add up across keys.
		switch n.Add(1) % 3 {
		case 0:
			allow(w, r)
		case 1:
			w.Write([]byte(`{"decision": "deny"}`))
		default:
			w.Write([]byte(`{"decision":"challenge","reasons":[]}`))
		}
	})
	out, rep := mustRun(t, srv.URL, "--rate", "200", "--duration", "1s")

	// With 512 free workers every request that falls due is sent, however
	// late the scheduler runs: the count does not depend on the machine.
	if rep.Sent != 200 {
		t.Errorf("sent = %d, want 200", rep.Sent)
	}
	if got := int64(len(srv.received())); got != rep.Sent {
		t.Errorf("server saw %d requests, report says %d sent", got, rep.Sent)
	}
	if rep.Completed != rep.Sent || rep.Errors != 0 || rep.Unsent != 0 || rep.Timeouts != 0 {
		t.Errorf("completed %d errors %d unsent %d timeouts %d, want %d/0/0/0",
			rep.Completed, rep.Errors, rep.Unsent, rep.Timeouts, rep.Sent)
	}
	if got := sum(rep.Outcomes); got != rep.Completed {
		t.Errorf("outcomes %v add up to %d, want %d", rep.Outcomes, got, rep.Completed)
	}
	if rep.Outcomes["unknown"] != 0 || len(rep.Outcomes) < 2 {
		t.Errorf("outcomes = %v, want allow/deny/challenge only", rep.Outcomes)
	}
	if got := rep.Status["200"]; got != rep.Completed {
		t.Errorf("status = %v, want 200=%d", rep.Status, rep.Completed)
	}
	var binned int64
	for _, b := range rep.Histogram {
		binned += b.Count
	}
	if binned != rep.Completed {
		t.Errorf("histogram holds %d requests, want %d", binned, rep.Completed)
	}
	l := rep.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency %+v is not positive and ordered", l)
	}
	// The achieved rate is completions over the run's wall time, which lasts
	// at least until the last request's due time (995ms): it cannot exceed
	// 200/0.995. How far below 200 it is depends on the machine, so that is
	// left to TestRunAchievesRate, which runs alone.
	if want := float64(rep.Completed) / rep.DurationSeconds; rep.TargetRate != 200 || rep.AchievedRate != want || rep.AchievedRate > 201.1 {
		t.Errorf("target/achieved rate = %v/%v, want 200 and %v (at most 201)", rep.TargetRate, rep.AchievedRate, want)
	}
	for _, want := range []string{"completed", "p99", "--- report", "histogram", "#"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunAchievesRate asserts a rate, so it is not parallel: it runs while
// no other test of the package does. The bound is loose enough for a
// machine busy with other work: 200 requests due over 1s complete at more
// than 100/s unless something stalls the process for half a second.
func TestRunAchievesRate(t *testing.T) {
	srv := newTarget(t, allow)
	_, rep := mustRun(t, srv.URL, "--rate", "200", "--duration", "1s")
	if rep.Completed != 200 || rep.AchievedRate < 100 || rep.AchievedRate > 201.1 {
		t.Errorf("completed %d at %.1f/s, want 200 at 100..201/s", rep.Completed, rep.AchievedRate)
	}
}

// A server slower than the workers can keep up with: requests wait for a
// worker, and that wait must show in the latency.
// It asserts a latency, so it is not parallel; a busy machine only makes
// the service slower and the queue longer, which the bound allows.
func TestRunCountsQueueingDelay(t *testing.T) {
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the service time under test, not synchronisation
		allow(w, r)
	})
	_, rep := mustRun(t, srv.URL, "--rate", "100", "--duration", "1s", "--workers", "2")

	if rep.Latency.P50 < 150 {
		t.Errorf("p50 = %.1fms, want far above the 50ms service time", rep.Latency.P50)
	}
	if rep.Unsent == 0 || rep.Sent+rep.Unsent != 100 {
		t.Errorf("sent %d + unsent %d, want 100 with some unsent", rep.Sent, rep.Unsent)
	}
	if rep.Completed != rep.Sent || rep.Errors != 0 {
		t.Errorf("completed %d errors %d, want %d/0", rep.Completed, rep.Errors, rep.Sent)
	}
}

func TestRunSendsOnlyToTarget(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := newTarget(t, func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1); allow(w, r) })
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/decisions", http.StatusTemporaryRedirect)
	})
	_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "200ms")

	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
	if rep.Status["307"] != rep.Completed || rep.Errors != rep.Completed || rep.Completed == 0 {
		t.Errorf("status %v errors %d completed %d, want every request a 307 error", rep.Status, rep.Errors, rep.Completed)
	}
	for _, r := range srv.received() {
		if r.path != "/v1/decisions" {
			t.Fatalf("request to %q, want /v1/decisions", r.path)
		}
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	t.Parallel()
	// The server never answers: it waits until the client gives up and
	// closes the connection, so every request times out however slow the
	// machine is.
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	_, rep := mustRun(t, srv.URL, "--rate", "50", "--duration", "200ms", "--timeout", "50ms")

	if rep.Timeouts != rep.Sent || rep.TransportErrors["timeout"] != rep.Sent || rep.Sent == 0 {
		t.Errorf("timeouts %d, transport errors %v, sent %d: want every request timed out",
			rep.Timeouts, rep.TransportErrors, rep.Sent)
	}
	if rep.Completed != 0 || rep.Errors != rep.Sent {
		t.Errorf("completed %d errors %d, want 0/%d", rep.Completed, rep.Errors, rep.Sent)
	}
}

// The run is cancelled from the server when its 10th request arrives, so
// what was sent before does not depend on timers; only the time to stop
// does, and the test is not parallel for it.
func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	var cancelled atomic.Int64 // UnixNano of the cancel
	srv := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 10 {
			cancelled.Store(time.Now().UnixNano())
			cancel()
		}
		allow(w, r)
	})
	_, rep, err := runLoad(t, ctx, srv.URL, "--rate", "100", "--duration", "1m")

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	if took := time.Since(time.Unix(0, cancelled.Load())); took > 5*time.Second {
		t.Errorf("Run returned %v after the cancel", took)
	}
	// 6,000 requests would be due in the minute; one second of them is
	// slack for a scheduler that was late and catches up.
	if rep.Sent < 10 || rep.Sent > 110 {
		t.Errorf("report sent = %d, want the 10 before the cancel and few more", rep.Sent)
	}
}

func TestRunAPIKey(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"none", "", nil, ""},
		{"flag", "", []string{"--key", "k-flag"}, "Bearer k-flag"},
		{"environment", "k-env", nil, "Bearer k-env"},
		{"flag over environment", "k-env", []string{"--key", "k-flag"}, "Bearer k-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(loadgen.KeyEnv, tt.env)
			srv := newTarget(t, allow)
			mustRun(t, srv.URL, append([]string{"--rate", "50", "--duration", "100ms"}, tt.args...)...)
			reqs := srv.received()
			if len(reqs) == 0 {
				t.Fatal("no requests")
			}
			for _, r := range reqs {
				if got := r.header.Get("Authorization"); got != tt.want {
					t.Fatalf("Authorization = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	srv := newTarget(t, allow)
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no target", []string{"--rate", "10"}, "--target"},
		{"relative target", []string{"--target", "localhost:1"}, "--target"},
		{"https target", []string{"--target", "https://127.0.0.1:1"}, "https is not supported"},
		{"control character in key", []string{"--target", srv.URL, "--key", "k\r\nX-Injected: 1"}, "--key"},
		{"zero rate", []string{"--target", srv.URL, "--rate", "0"}, "--rate"},
		{"negative duration", []string{"--target", srv.URL, "--duration", "-1s"}, "--duration"},
		{"no workers", []string{"--target", srv.URL, "--workers", "0"}, "--workers"},
		{"retry ratio above 1", []string{"--target", srv.URL, "--retry-ratio", "1.5"}, "--retry-ratio"},
		{"negative attack ratio", []string{"--target", srv.URL, "--attack-ratio", "-0.1"}, "--attack-ratio"},
		{"zero timeout", []string{"--target", srv.URL, "--timeout", "0s"}, "--timeout"},
		{"unknown flag", []string{"--target", srv.URL, "--burst", "3"}, "burst"},
		{"stray argument", []string{"--target", srv.URL, "extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := loadgen.Run(context.Background(), tt.args, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%q) error = %v, want one mentioning %q", tt.args, err, tt.want)
			}
		})
	}
	if n := len(srv.received()); n != 0 {
		t.Errorf("bad flags still sent %d requests", n)
	}
}

// Every request that falls due is either sent or unsent: the same total
// whether the workers are free or all stuck on a server that never answers.
// The rates and durations are ones where rate × duration in floating point
// is a hair off a whole number.
func TestRunCountsEveryDueRequest(t *testing.T) {
	t.Parallel()
	tests := []struct{ rate, duration string }{
		{"370", "100ms"},
		{"900", "70ms"},
		{"50", "200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.rate+"/s for "+tt.duration, func(t *testing.T) {
			t.Parallel()
			free := newTarget(t, allow)
			_, all := mustRun(t, free.URL, "--rate", tt.rate, "--duration", tt.duration)
			stuck := newRawTarget(t, func(net.Conn, int) bool { return true })
			_, rep := mustRun(t, stuck.URL, "--rate", tt.rate, "--duration", tt.duration,
				"--workers", "1", "--timeout", "500ms")

			if all.Sent == 0 || all.Unsent != 0 {
				t.Fatalf("free workers: sent %d unsent %d, want all sent", all.Sent, all.Unsent)
			}
			if rep.Sent != 1 || rep.Sent+rep.Unsent != all.Sent {
				t.Errorf("stuck worker: sent %d + unsent %d, want 1 + %d", rep.Sent, rep.Unsent, all.Sent-1)
			}
		})
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
