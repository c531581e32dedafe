package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The backup subcommand's HTTP client: it talks to a running server's
// GET /admin/backup.

// downloadBackup streams GET /admin/backup of target into w.
func downloadBackup(ctx context.Context, target, key string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/admin/backup", nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("backup: %s answered %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("backup: download: %w", err)
	}
	return nil
}
