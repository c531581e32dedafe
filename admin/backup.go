package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// MaxBackupDuration bounds one online backup.
const MaxBackupDuration = 6 * time.Hour

// Backuper writes a consistent backup of the database (features.Store).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (uint64, error)
}

// RegisterBackup adds GET /backup to g, for admin keys only: it streams a
// full backup of the running service (features.Store.Backup), which
// `risk restore` loads into a new data directory. Only one process may open
// the Badger directory, so this is how a live service is backed up.
//
// The answer is 200 as soon as the stream starts; a backup that fails
// midway is cut short, and its missing footer makes restore refuse it.
// Audit: each backup is recorded as "backup.download". With b nil (cluster
// mode) it answers 501 and points at pg_dump.
func RegisterBackup(g *echo.Group, require Require, b Backuper, audit *Audit, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if b == nil {
		g.GET("/backup", func(echo.Context) error {
			return echo.NewHTTPError(http.StatusNotImplemented,
				"this node runs in cluster mode: back the cluster up with pg_dump (docs/cluster.md)")
		}, require(engine.RoleAdmin))
		return
	}
	g.GET("/backup", func(c echo.Context) error {
		req := c.Request()
		// The request deadline is sized for the payment path; a backup of a
		// large database streams for minutes. A client that goes away makes
		// the writes fail, which stops the stream.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), MaxBackupDuration)
		defer cancel()
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(MaxBackupDuration))
		if audit != nil {
			if _, err := audit.Record(req.Context(), Entry{Action: "backup.download", Target: "database"}); err != nil {
				return err
			}
		}
		name := "risk-" + time.Now().UTC().Format("20060102T150405Z") + ".backup"
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
		h.Set(echo.HeaderCacheControl, "no-store")
		h.Set("Trailer", "X-Backup-Version")
		c.Response().WriteHeader(http.StatusOK)
		version, err := b.Backup(ctx, c.Response())
		if err != nil {
			log.Error("online backup failed", "err", err)
			return nil // the status is sent; the truncated stream tells the client
		}
		h.Set("X-Backup-Version", strconv.FormatUint(version, 10))
		return nil
	}, require(engine.RoleAdmin))
}
