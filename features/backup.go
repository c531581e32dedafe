package features

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/dgraph-io/badger/v4"
)

// A backup is Badger's backup stream (every live key with its version and
// expiry) framed so that a truncated or damaged copy is refused instead of
// half restored:
//
//	"RISKBACKUP1\n"                       header
//	Badger stream (DB.Backup format)
//	"RISKEND1" | version (8, big endian) | SHA-256 of everything before it
//
// The Badger stream has no end marker of its own: cut at a record boundary
// it would load without complaint.
const (
	backupMagic = "RISKBACKUP1\n"
	footerMagic = "RISKEND1"
	footerLen   = len(footerMagic) + 8 + sha256.Size
	loadPending = 256 // Badger KVLoader batches in flight
)

// ErrBadBackup marks a backup file that is truncated, damaged or not a
// backup at all.
var ErrBadBackup = errors.New("not a complete backup")

// Backup writes a full, consistent backup of the whole database (decisions,
// feature windows, lists, definitions, rule versions, keys, audit) to w
// while the store keeps serving: it reads one Badger snapshot. It returns
// the Badger version the snapshot holds. Restore reads it back. When ctx
// ends the backup stops with its error.
func (s *Store) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if s.db == nil || s.closed.Load() {
		return 0, errors.New("backup: the store is not open")
	}
	return backupDB(ctx, s.db, w)
}

// BackupDir writes a backup of the database in dir, which no process may
// have open (the server must be stopped; for a running server use its
// online backup). See Store.Backup.
func BackupDir(ctx context.Context, dir string, w io.Writer) (uint64, error) {
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return 0, fmt.Errorf("open %s (is the server running? back it up online instead): %w", dir, err)
	}
	v, err := backupDB(ctx, db, w)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close badger: %w", cerr)
	}
	return v, err
}

func backupDB(ctx context.Context, db *badger.DB, w io.Writer) (uint64, error) {
	h := sha256.New()
	cw := &ctxWriter{ctx: ctx, w: io.MultiWriter(w, h)}
	if _, err := io.WriteString(cw, backupMagic); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	stream := db.NewStream()
	stream.LogPrefix = "backup"
	version, err := stream.Backup(cw, 0)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	footer := binary.BigEndian.AppendUint64([]byte(footerMagic), version)
	h.Write(footer)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if _, err := w.Write(h.Sum(footer)); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return version, nil
}

// ctxWriter fails writes once ctx is done, which stops Badger's stream.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Restore loads a backup from r into dir, which must not exist or be
// empty, and returns the backup's version. Open a Store on dir afterwards:
// it replays the decisions whose features were not yet flushed when the
// backup was taken. A backup that is truncated or damaged returns an error
// wrapping ErrBadBackup, and dir is removed again.
func Restore(ctx context.Context, dir string, r io.Reader) (version uint64, err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("restore: %s is not empty; restore into a new data directory", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("restore: %w", err)
	}
	h := sha256.New()
	head := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != backupMagic {
		return 0, fmt.Errorf("restore: missing backup header: %w", ErrBadBackup)
	}
	h.Write(head)
	body := &tailReader{ctx: ctx, r: r, h: h, keep: footerLen}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return 0, fmt.Errorf("restore: open %s: %w", dir, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("restore: close badger: %w", cerr)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := db.Load(body, loadPending); err != nil {
		if body.err != nil {
			return 0, fmt.Errorf("restore: %w", body.err)
		}
		return 0, fmt.Errorf("restore: %w: %w", ErrBadBackup, err)
	}
	if body.err != nil {
		return 0, fmt.Errorf("restore: %w", body.err)
	}
	if version, err = body.verify(); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	return version, nil
}

// tailReader passes r through, hashing it, but holds back the last keep
// bytes: the footer, which is checked once r ends.
type tailReader struct {
	ctx  context.Context
	r    io.Reader
	h    hash.Hash
	keep int
	buf  []byte // bytes read but not yet passed on
	tmp  []byte
	eof  bool
	err  error // a read error other than EOF
}

func (t *tailReader) Read(p []byte) (int, error) {
	if err := t.ctx.Err(); err != nil {
		t.err = err
		return 0, err
	}
	for !t.eof && len(t.buf) < t.keep+len(p) {
		if t.tmp == nil {
			t.tmp = make([]byte, 64<<10)
		}
		n, err := t.r.Read(t.tmp)
		t.buf = append(t.buf, t.tmp[:n]...)
		if errors.Is(err, io.EOF) {
			t.eof = true
		} else if err != nil {
			t.err = err
			return 0, err
		}
	}
	avail := len(t.buf) - t.keep
	if avail <= 0 {
		return 0, io.EOF
	}
	n := copy(p, t.buf[:avail])
	t.h.Write(p[:n])
	t.buf = t.buf[n:]
	return n, nil
}

// verify checks the held-back footer against what was read.
func (t *tailReader) verify() (uint64, error) {
	if !t.eof || len(t.buf) != t.keep {
		return 0, fmt.Errorf("trailing data after the backup: %w", ErrBadBackup)
	}
	f := t.buf
	if !bytes.HasPrefix(f, []byte(footerMagic)) {
		return 0, fmt.Errorf("the backup is truncated: %w", ErrBadBackup)
	}
	t.h.Write(f[:len(footerMagic)+8])
	if !bytes.Equal(t.h.Sum(nil), f[len(footerMagic)+8:]) {
		return 0, fmt.Errorf("checksum mismatch: %w", ErrBadBackup)
	}
	return binary.BigEndian.Uint64(f[len(footerMagic) : len(footerMagic)+8]), nil
}

// VerifyBackup reads a whole backup from r and checks its header and
// checksum without loading it. It returns the backup's version, or an
// error wrapping ErrBadBackup.
func VerifyBackup(r io.Reader) (uint64, error) {
	h := sha256.New()
	head := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != backupMagic {
		return 0, fmt.Errorf("verify: missing backup header: %w", ErrBadBackup)
	}
	h.Write(head)
	body := &tailReader{ctx: context.Background(), r: r, h: h, keep: footerLen}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return 0, fmt.Errorf("verify: %w", err)
	}
	return body.verify()
}
