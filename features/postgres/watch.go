package postgres

import (
	"bytes"
	"context"

	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/riskengine/risk/features/keyspace"
)

// changesChannel is the NOTIFY channel of the change feed. It is one per
// database, not per schema: backends in other schemas of the same
// database cause spurious, harmless reloads.
const changesChannel = "risk_changes"

// Watch backoff after a failed or lost listening connection: it starts at
// watchBackoffMin, doubles per failure up to watchBackoffMax, and starts
// over after a connection that lasted longer than watchBackoffMax.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 10 * time.Second
)

// Watch follows the change feed until ctx ends. Every committed kv Update
// that wrote or deleted keys reaches fn as the sorted, distinct keyspace
// prefixes it touched (a registered prefix or key from package keyspace;
// for an unregistered key, its bytes up to and including the first '/').
// fn(nil) means "anything may have changed, reload everything": Watch
// calls it after every (re)connect, since notifications sent while it
// was not listening are lost, and for a change to a key that has no
// printable prefix. Keys that expire are not announced.
//
// Watch listens on a connection of its own, outside the pool, and
// reconnects with backoff when that fails. fn runs on Watch's goroutine,
// one call at a time; notifications queue while it runs.
func (db *DB) Watch(ctx context.Context, fn func(prefixes []string)) {
	backoff := watchBackoffMin
	for ctx.Err() == nil {
		start := time.Now()
		listening, _ := db.listen(ctx, fn)
		// A connection that listened for a while starts the backoff over;
		// one that keeps dropping at once backs off like a failed dial, so
		// fn(nil) does not turn into a reload storm.
		if listening && time.Since(start) > watchBackoffMax {
			backoff = watchBackoffMin
		}
		// The error is dropped: fn(nil) after the reconnect is what the
		// caller needs, and a down database shows in its other calls.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, watchBackoffMax)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// listen connects, LISTENs, calls fn(nil) and then passes on notifications
// until the connection fails or ctx ends. listening reports whether it got
// as far as fn(nil).
func (db *DB) listen(ctx context.Context, fn func([]string)) (listening bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("watch connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{changesChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	fn(nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if n.Channel != changesChannel {
			continue
		}
		fn(parsePayload(n.Payload))
	}
}

// maxPayload keeps a NOTIFY payload under PostgreSQL's limit of 8000
// bytes, past which pg_notify, and with it the Update, would fail.
const maxPayload = 4000

// changePayload is a NOTIFY payload: the prefixes, sorted and joined by
// commas; "" (anything changed) when they would not fit.
func changePayload(prefixes map[string]struct{}) string {
	out := make([]string, 0, len(prefixes))
	for p := range prefixes {
		out = append(out, p)
	}
	slices.Sort(out)
	payload := strings.Join(out, ",")
	if len(payload) > maxPayload {
		return ""
	}
	return payload
}

// parsePayload is changePayload's inverse. An empty prefix, from a key
// with no printable prefix, turns the whole change into nil: reload
// everything.
func parsePayload(payload string) []string {
	prefixes := strings.Split(payload, ",")
	if slices.Contains(prefixes, "") {
		return nil
	}
	return prefixes
}

// registry maps keys to the keyspace entries they fall under.
type registry [][]byte

func newRegistry() registry {
	var r registry
	for _, e := range keyspace.All() {
		r = append(r, []byte(e.Key))
	}
	return r
}

// prefix is the change-feed prefix of key: the registered entry it starts
// with, else its bytes up to and including the first '/' (the whole key
// when it has none). A prefix that cannot travel in a NOTIFY payload (not
// UTF-8, or holding a comma or NUL) becomes "", which readers take as
// "anything changed".
func (r registry) prefix(key []byte) string {
	for _, e := range r {
		if bytes.HasPrefix(key, e) {
			return string(e)
		}
	}
	p := key
	if i := bytes.IndexByte(key, '/'); i >= 0 {
		p = key[:i+1]
	}
	if !utf8.Valid(p) || bytes.ContainsAny(p, ",\x00") {
		return ""
	}
	return string(p)
}
