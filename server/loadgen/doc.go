// Package loadgen drives the decision service with synthetic payment traffic
// and reports how fast and how well it answered.
//
// The generator is open-loop: request i is due at start + i/rate whatever
// happened to earlier requests, and its latency is measured from that due
// time, so time spent waiting for a free worker or a slow server is counted
// rather than hidden (no coordinated omission). Latencies go into a
// fixed-memory HdrHistogram, never a slice of samples.
//
// Traffic is deterministic for a given seed apart from the clock and a
// run-unique transaction-id prefix: Zipf-popular accounts with stable cards
// and devices, log-normal amounts, a share of byte-identical retries and a
// share of card-testing bursts.
//
// Requests go through a minimal HTTP/1.1 client of the package's own rather
// than net/http: each worker keeps one persistent connection, and work goes
// to the most recently idle worker, so a run opens only as many connections
// as it keeps busy and spends little CPU per request on the machine it
// shares with the server under test. Only http targets are supported.
//
// Run is the command-line entry point ("risk loadgen" and "risk loadgen
// plot"); Load runs one load test from a validated Config.
package loadgen
