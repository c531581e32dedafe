package server_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"

	"github.com/riskengine/risk/engine"
)

// BenchmarkDecideLimits is the whole in-process decision with the sample
// rules and features, without and with the limiter (limits read before the
// rules, daily spend recorded at commit). The difference is what limits
// add to a decision; BenchmarkLimits in features isolates the read. The
// process CPU time per decision (cpu-ns/op) compares better than the wall
// clock on a shared machine.
func BenchmarkDecideLimits(b *testing.B) {
	for _, limits := range []bool{false, true} {
		b.Run("limits="+strconv.FormatBool(limits), func(b *testing.B) {
			s := newFBStackLimits(b, limits)
			p := engine.Payment{
				Amount: 4_000, Currency: "EUR",
				Account:  engine.Account{Email: "a@example.com", Country: "FR", CreatedAt: s.clock.now().AddDate(-1, 0, 0)},
				Card:     engine.Card{BIN: "411111", Country: "FR"},
				Device:   engine.Device{IP: "203.0.113.9", IPCountry: "FR"},
				Merchant: engine.Merchant{ID: "m_1", MCC: "5999", Country: "FR"},
			}
			b.ReportAllocs()
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			cpu := ru.Utime.Nano() + ru.Stime.Nano()
			i := 0
			for b.Loop() {
				q := p
				q.TransactionID = "bench_" + strconv.Itoa(i)
				q.Account.ID = "acc_" + strconv.Itoa(i%20000)
				q.Card.Fingerprint = "fp_" + strconv.Itoa(i%20000)
				q.Device.ID = "dev_" + strconv.Itoa(i%20000)
				rec, _, err := s.engine.Decide(context.Background(), q, nil)
				if err != nil || rec.Degraded || (limits && rec.Limits.Entity == "") {
					b.Fatalf("decide: %v %+v", err, rec)
				}
				i++
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
