package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLock is the advisory lock key of the cluster's singleton work.
const leaderLock = 0x7269736c // "risl"

// Leader holds, while it can, a session advisory lock that makes one node
// of the cluster the one that runs singleton work: the readers of the
// decision log that open review items and queue webhooks. When the holder
// dies its session ends, PostgreSQL releases the lock and another node
// takes it at its next try.
type Leader struct {
	db     *DB
	every  time.Duration
	log    *slog.Logger
	leader atomic.Bool
}

// NewLeader returns a Leader trying every every (a second when zero).
func NewLeader(db *DB, every time.Duration, log *slog.Logger) *Leader {
	if every <= 0 {
		every = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Leader{db: db, every: every, log: log}
}

// IsLeader reports whether this node holds the lock now.
func (l *Leader) IsLeader() bool { return l.leader.Load() }

// Run tries to take the lock and, once held, keeps its connection alive,
// until ctx ends.
func (l *Leader) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := l.hold(ctx)
		l.leader.Store(false)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("cluster leadership lost or not taken", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(l.every):
		}
	}
}

// hold takes the lock on its own connection and pings it until the
// connection fails or ctx ends. It returns nil when another node holds it.
func (l *Leader) hold(ctx context.Context) error {
	cfg := l.db.Pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	for ctx.Err() == nil {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", leaderLock).Scan(&got); err != nil {
			return err
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.every):
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	l.leader.Store(true)
	l.log.Info("this node runs the cluster's singleton work (review and webhook readers)")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.every):
		}
		pctx, cancel := context.WithTimeout(ctx, l.every)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
}
