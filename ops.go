package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/server"
)

// isOpsCommand reports whether name is one of the operations subcommands:
// backup, restore and keys.
func isOpsCommand(name string) bool {
	return name == "backup" || name == "restore" || name == "keys"
}

// opsCommand runs `risk backup|restore|keys ...`.
func opsCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "backup":
		return backupCommand(ctx, args[1:], stdout, stderr)
	case "restore":
		return restoreCommand(ctx, args[1:], stdout, stderr)
	default:
		return keysCommand(args[1:], stdout)
	}
}

// backupCommand is `risk backup --out FILE (--target URL | --data DIR)`.
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (required)")
	target := fs.String("target", env("RISK_TARGET", ""), "base URL of a running server to back up online, e.g. http://127.0.0.1:8080 [RISK_TARGET]")
	key := fs.String("key", env("RISK_API_KEY", ""), "admin API key for --target; prefer the environment variable [RISK_API_KEY]")
	dir := fs.String("data", "", "data directory of a stopped server to back up offline")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk backup --out FILE --target URL   online, from a running server (admin key)\n"+
			"       risk backup --out FILE --data DIR     offline, from a stopped server's data directory\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return errors.New("backup: --out is required")
	case (*target == "") == (*dir == ""):
		return errors.New("backup: give exactly one of --target (online) and --data (offline)")
	case fs.NArg() > 0:
		return fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	// Write beside the destination and rename once complete and verified,
	// so FILE is never a partial backup.
	tmp, err := os.CreateTemp(dirOf(*out), ".risk-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if *target != "" {
		err = downloadBackup(ctx, *target, *key, tmp)
	} else {
		_, err = features.BackupDir(ctx, *dir, tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	version, err := features.VerifyBackup(tmp)
	if err != nil {
		return fmt.Errorf("backup: the copy is not complete: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of version %d written to %s\n", version, *out)
	return nil
}

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

func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// restoreCommand is `risk restore --data DIR FILE`.
func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "new data directory to restore into; it must not exist or be empty (required)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk restore --data DIR FILE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		fs.Usage()
		return errors.New("restore: want --data DIR and one backup FILE")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	version, err := features.Restore(ctx, *dir, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored version %d into %s; start the server with --data %s\n", version, *dir, *dir)
	return nil
}

// keysCommand is `risk keys generate`: it prints a new random key, for
// RISK_ADMIN_KEY.
func keysCommand(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "generate" {
		return errors.New("usage: risk keys generate")
	}
	fmt.Fprintln(stdout, admin.GenerateKey())
	return nil
}

// checkDevAddr allows dev mode (no authentication) only on a loopback
// address, so it cannot be switched on for a reachable server by accident.
func checkDevAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--dev turns authentication off and is allowed only on a loopback address such as --addr 127.0.0.1:8080, not %q", addr)
}

// parseFallbackMerchants parses "m_1=deny,m_2=allow".
func parseFallbackMerchants(s string) (map[string]engine.Outcome, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]engine.Outcome{}
	for part := range strings.SplitSeq(s, ",") {
		id, o, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, o = strings.TrimSpace(id), strings.TrimSpace(o)
		if !ok || id == "" || !engine.Outcome(o).Valid() {
			return nil, fmt.Errorf("--fallback-merchant %q: want MERCHANT=allow|challenge|deny, comma separated", part)
		}
		out[id] = engine.Outcome(o)
	}
	return out, nil
}

// bootstrapKeys makes sure an admin can reach the service: it ensures the
// operator's admin key (RISK_ADMIN_KEY or --admin-key) exists, and when no
// admin key is active at all it generates one and prints it to stderr,
// once.
func bootstrapKeys(ctx context.Context, keys *admin.Keys, adminKey string, stderr io.Writer, log *slog.Logger) error {
	ctx = engine.WithPrincipal(ctx, engine.Principal{Name: "startup"})
	if adminKey != "" {
		k, created, err := keys.Ensure(ctx, adminKey, "bootstrap", engine.RoleAdmin)
		switch {
		case err != nil:
			return fmt.Errorf("admin key from RISK_ADMIN_KEY/--admin-key: %w", err)
		case created:
			log.Info("admin key stored", "key_id", k.ID, "name", k.Name)
		case !k.Active():
			log.Warn("RISK_ADMIN_KEY/--admin-key is a revoked key; it stays revoked", "key_id", k.ID)
		case k.Role != engine.RoleAdmin:
			log.Warn("RISK_ADMIN_KEY/--admin-key exists with another role; it keeps it", "key_id", k.ID, "role", k.Role)
		}
	}
	if keys.HasActiveAdmin() {
		return nil
	}
	k, secret, err := keys.Create(ctx, "bootstrap", engine.RoleAdmin)
	if errors.Is(err, engine.ErrConflict) {
		k, secret, err = keys.Create(ctx, "bootstrap-"+time.Now().UTC().Format("20060102T150405"), engine.RoleAdmin)
	}
	if err != nil {
		return fmt.Errorf("generate an admin key: %w", err)
	}
	log.Warn("no admin key existed: generated one and printed it to stderr once", "key_id", k.ID, "name", k.Name)
	fmt.Fprintf(stderr, "\n  risk: generated an admin key. It is shown only this once:\n\n    %s\n\n"+
		"  Store it in a secret manager; create narrower keys with POST /admin/keys.\n"+
		"  Set RISK_ADMIN_KEY to choose the admin key yourself.\n\n", secret)
	return nil
}

// storeStats adapts the feature store's figures for the metrics.
func storeStats(store *features.Store) func() server.StoreStats {
	return func() server.StoreStats {
		s := store.Stats()
		return server.StoreStats{
			CacheHits: s.CacheHits, CacheMisses: s.CacheMisses, CachedWindows: s.CachedWindows,
			LSMBytes: s.LSMBytes, VLogBytes: s.VLogBytes, LastSeq: s.LastSeq,
		}
	}
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f
		}
	}
	return def
}
