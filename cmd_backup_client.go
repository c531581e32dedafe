package main

import (
	"context"
	"fmt"
	"io"

	"github.com/riskengine/risk/server/client"
)

// downloadBackup streams GET /admin/backup of target into w, with the API
// client (server/client).
func downloadBackup(ctx context.Context, target, key string, w io.Writer) error {
	c, err := client.New(client.Config{BaseURL: target, Key: key, UserAgent: "risk-backup"})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := c.Backup(ctx, w); err != nil {
		return fmt.Errorf("backup: %s: %w", target, err)
	}
	return nil
}
