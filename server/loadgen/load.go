package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// responseBuf is how much of each response body is kept to find the decision.
const responseBuf = 4 << 10

// Run is the "risk loadgen" command. args exclude the command name; when
// args[0] is "plot" it runs the plot subcommand instead. Progress and the
// final report are printed to out. The API key falls back to $RISK_API_KEY.
func Run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "plot" {
		return runPlot(args[1:], out)
	}
	c, err := parseConfig(args, out, os.Getenv)
	if err != nil {
		return err
	}
	_, err = Load(ctx, c, out)
	return err
}

// Load runs the load described by c, printing a progress line every second
// and the final report to out, and writes the JSON report to c.Out when set.
// It returns when c.Duration has passed and in-flight requests have finished
// (at most c.Timeout later), or as soon as ctx is done; in that case it still
// reports what ran and returns an error wrapping ctx.Err().
func Load(ctx context.Context, c Config, out io.Writer) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.Target)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	u = u.JoinPath("/v1/decisions")
	target := u.String()
	bodies := &sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	cl := newClient(c, u, bodies)
	run := strconv.FormatUint(uint64(time.Now().UnixNano()), 36) + strconv.FormatUint(uint64(rand.Uint32()), 36)
	gen := newTraffic(c, run)

	fmt.Fprintf(out, "loadgen: %g/s for %v to %s (workers %d, seed %d, run %s)\n",
		c.Rate, c.Duration, target, c.Workers, c.Seed, run)

	jobs := newDispatcher()
	var sent atomic.Int64
	st := newStats(&sent)
	var workers sync.WaitGroup
	for range c.Workers {
		in := jobs.inbox()
		workers.Go(func() {
			w := cl.newConn()
			defer w.close()
			for {
				j, ok := jobs.next(in)
				if !ok {
					return
				}
				st.add(w.do(ctx, j))
			}
		})
	}

	start := time.Now()
	done := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		st.tick(out, start, done)
		close(ticked)
	}()

	unsent := schedule(ctx, c, start, gen, bodies, jobs, &sent)
	jobs.close()
	workers.Wait()
	close(done)
	<-ticked

	rep := st.report(c, target, time.Since(start), unsent)
	rep.print(out)
	if c.Out != "" {
		if err := rep.writeFile(c.Out); err != nil {
			return rep, err
		}
		fmt.Fprintf(out, "report written to %s\n", c.Out)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("load interrupted: %w", err)
	}
	return rep, nil
}

// schedule hands request i to a free worker at start + i/rate until
// c.Duration has passed or ctx is done. A request whose time has come while
// every worker is busy is handed over late, its latency still counted from
// its due time; one whose time has come when a worker is free is handed
// over, even if the scheduler itself gets to it late. It returns how many
// requests fell due but were never handed over because the run ended first.
func schedule(ctx context.Context, c Config, start time.Time, gen *traffic, bodies *sync.Pool, jobs *dispatcher, sent *atomic.Int64) int64 {
	end := start.Add(c.Duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	interval := float64(time.Second) / c.Rate
	dueAt := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	var i int64
	for ; ; i++ {
		due := dueAt(i)
		if !due.Before(end) {
			return 0
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				if time.Now().Before(due) {
					return 0 // cancelled before request i fell due
				}
				// The timer fired too: request i is due.
			}
		}
		buf := bodies.Get().(*[]byte)
		*buf = gen.next(due, (*buf)[:0])
		if !jobs.send(ctx, job{due: due, body: buf}) {
			bodies.Put(buf)
			// Request i and every later one due before now (or the end)
			// fell due without being sent. n is the first request not due
			// by then; the estimate can be one off through rounding.
			stop := start.Add(min(time.Since(start), c.Duration))
			n := int64(math.Ceil(float64(stop.Sub(start)) / interval))
			for n > 0 && !dueAt(n-1).Before(stop) {
				n--
			}
			for dueAt(n).Before(stop) {
				n++
			}
			return max(n-i, 1)
		}
		sent.Add(1)
	}
}
