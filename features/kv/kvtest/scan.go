package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/riskengine/risk/features/kv"
)

// setAll stores every key with its own bytes as the value, in one Update.
func setAll(t *testing.T, db kv.DB, keys ...string) {
	t.Helper()
	mustUpdate(t, db, func(tx kv.Tx) error {
		for _, k := range keys {
			if err := tx.Set([]byte(k), []byte("v:"+k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func reversed(keys []string) []string {
	out := slices.Clone(keys)
	slices.Reverse(out)
	return out
}

func testScanOrder(t *testing.T, db kv.DB) {
	// Stored out of order; bytewise order puts "kvtest/s/B" before "kvtest/s/a" and
	// "kvtest/s/a" before "kvtest/s/a\x00".
	setAll(t, db, "kvtest/s/c", "kvtest/s/a\x00", "kvtest/s/a", "kvtest/s/B", "kvtest/s/b", "kvtest/s/aa")
	want := []string{"kvtest/s/B", "kvtest/s/a", "kvtest/s/a\x00", "kvtest/s/aa", "kvtest/s/b", "kvtest/s/c"}
	wantKeys(t, "forward", scanKeys(t, db, []byte("kvtest/s/"), kv.ScanOptions{}), want...)
	wantKeys(t, "reverse", scanKeys(t, db, []byte("kvtest/s/"), kv.ScanOptions{Reverse: true}), reversed(want)...)

	err := db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte("kvtest/s/"), kv.ScanOptions{}, func(k, v []byte) error {
			if string(v) != "v:"+string(k) {
				return fmt.Errorf("scan passed %q for %q, want %q", v, k, "v:"+string(k))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testScanFrom(t *testing.T, db kv.DB) {
	setAll(t, db, "kvtest/r", "kvtest/r/a", "kvtest/r/b", "kvtest/r/d", "kvtest/r/e", "kvtest/r0")
	p := []byte("kvtest/r/")
	for _, tt := range []struct {
		name    string
		from    string
		reverse bool
		want    []string
	}{
		{"forward at a key", "kvtest/r/b", false, []string{"kvtest/r/b", "kvtest/r/d", "kvtest/r/e"}},
		{"forward between keys", "kvtest/r/c", false, []string{"kvtest/r/d", "kvtest/r/e"}},
		{"forward at the first", "kvtest/r/a", false, []string{"kvtest/r/a", "kvtest/r/b", "kvtest/r/d", "kvtest/r/e"}},
		{"forward after the last", "kvtest/r/f", false, nil},
		{"forward at the prefix", "kvtest/r/", false, []string{"kvtest/r/a", "kvtest/r/b", "kvtest/r/d", "kvtest/r/e"}},
		{"forward before the prefix", "kvtest/r", false, []string{"kvtest/r/a", "kvtest/r/b", "kvtest/r/d", "kvtest/r/e"}},
		{"forward past the prefix", "kvtest/r0", false, nil},
		{"reverse at a key", "kvtest/r/d", true, []string{"kvtest/r/d", "kvtest/r/b", "kvtest/r/a"}},
		{"reverse between keys", "kvtest/r/c", true, []string{"kvtest/r/b", "kvtest/r/a"}},
		{"reverse at the last", "kvtest/r/e", true, []string{"kvtest/r/e", "kvtest/r/d", "kvtest/r/b", "kvtest/r/a"}},
		{"reverse before the first", "kvtest/r/", true, nil},
		{"reverse past the prefix", "kvtest/r0", true, []string{"kvtest/r/e", "kvtest/r/d", "kvtest/r/b", "kvtest/r/a"}},
		{"reverse before the prefix", "kvtest/r", true, nil},
	} {
		got := scanKeys(t, db, p, kv.ScanOptions{From: []byte(tt.from), Reverse: tt.reverse})
		wantKeys(t, tt.name, got, tt.want...)
	}
}

func testScanKeysOnly(t *testing.T, db kv.DB) {
	setAll(t, db, "kvtest/ko/a", "kvtest/ko/b", "kvtest/ko/c")
	want := []string{"kvtest/ko/a", "kvtest/ko/b", "kvtest/ko/c"}
	// scanKeys fails on a non-nil value with KeysOnly.
	wantKeys(t, "forward", scanKeys(t, db, []byte("kvtest/ko/"), kv.ScanOptions{KeysOnly: true}), want...)
	wantKeys(t, "reverse", scanKeys(t, db, []byte("kvtest/ko/"), kv.ScanOptions{KeysOnly: true, Reverse: true}), reversed(want)...)
	wantKeys(t, "from", scanKeys(t, db, []byte("kvtest/ko/"), kv.ScanOptions{KeysOnly: true, From: []byte("kvtest/ko/b")}), "kvtest/ko/b", "kvtest/ko/c")
}

func testScanStop(t *testing.T, db kv.DB) {
	setAll(t, db, "kvtest/st/a", "kvtest/st/b", "kvtest/st/c", "kvtest/st/d")
	for _, reverse := range []bool{false, true} {
		var seen []string
		err := db.View(context.Background(), func(tx kv.Tx) error {
			return tx.Scan([]byte("kvtest/st/"), kv.ScanOptions{Reverse: reverse}, func(k, _ []byte) error {
				seen = append(seen, string(k))
				if len(seen) == 2 {
					return kv.Stop
				}
				return nil
			})
		})
		if err != nil {
			t.Errorf("scan ended by Stop (reverse %v): err = %v, want nil", reverse, err)
		}
		want := []string{"kvtest/st/a", "kvtest/st/b"}
		if reverse {
			want = []string{"kvtest/st/d", "kvtest/st/c"}
		}
		wantKeys(t, fmt.Sprintf("keys until Stop (reverse %v)", reverse), seen, want...)
	}

	calls := 0
	err := db.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte("kvtest/st/"), kv.ScanOptions{}, func(k, _ []byte) error {
			calls++
			return fmt.Errorf("at %s: %w", k, errBoom)
		})
	})
	if !errors.Is(err, errBoom) || calls != 1 {
		t.Errorf("scan whose callback fails: err = %v after %d calls, want errBoom after 1", err, calls)
	}
}

func testScanPrefixBoundaries(t *testing.T, db kv.DB) {
	// kv.PrefixEnd("kvtest/b/") is "kvtest/b0": it and everything after it
	// are out, as is everything before "kvtest/b/", however many 0xff bytes
	// it carries.
	setAll(t, db,
		"kvtest/b", "kvtest/b.", "kvtest/b.\xff", "kvtest/b.\xff\xff", // before the prefix
		"kvtest/b/", "kvtest/b/a", "kvtest/b/\xff", "kvtest/b/\xff\x00", "kvtest/b/\xff\xff", "kvtest/b/\xff\xff\xff", // in it
		"kvtest/b0", "kvtest/b0\x00", "kvtest/b0\xff", "kvtest/c", // after it
	)
	in := []string{"kvtest/b/", "kvtest/b/a", "kvtest/b/\xff", "kvtest/b/\xff\x00", "kvtest/b/\xff\xff", "kvtest/b/\xff\xff\xff"}
	wantKeys(t, "forward", scanKeys(t, db, []byte("kvtest/b/"), kv.ScanOptions{}), in...)
	wantKeys(t, "reverse", scanKeys(t, db, []byte("kvtest/b/"), kv.ScanOptions{Reverse: true}), reversed(in)...)

	// A prefix ending in 0xff: its end carries the byte before it up.
	setAll(t, db, "\xfeq\xfe\xff", "\xfeq\xff", "\xfeq\xff\x00", "\xfeq\xff\xff", "\xfeq\xff\xff\xff", "\xfer", "\xfer\x00")
	in = []string{"\xfeq\xff", "\xfeq\xff\x00", "\xfeq\xff\xff", "\xfeq\xff\xff\xff"}
	wantKeys(t, "forward, prefix ending in 0xff", scanKeys(t, db, []byte("\xfeq\xff"), kv.ScanOptions{}), in...)
	wantKeys(t, "reverse, prefix ending in 0xff", scanKeys(t, db, []byte("\xfeq\xff"), kv.ScanOptions{Reverse: true}), reversed(in)...)
}

func testScanAllFF(t *testing.T, db kv.DB) {
	// A prefix of only 0xff bytes has no end: every key after it is in.
	long := "\xff\xff" + string(bytes.Repeat([]byte{0xff}, 40))
	setAll(t, db, "\xfe\xff\xff", "\xff", "\xff\xfe\xff", "\xff\xff", "\xff\xff\x00", "\xff\xff\xffz", long)
	in := []string{"\xff\xff", "\xff\xff\x00", "\xff\xff\xffz", long}
	sort.Strings(in)
	wantKeys(t, "forward", scanKeys(t, db, []byte("\xff\xff"), kv.ScanOptions{}), in...)
	wantKeys(t, "reverse", scanKeys(t, db, []byte("\xff\xff"), kv.ScanOptions{Reverse: true}), reversed(in)...)
}

func testScanEmptyPrefix(t *testing.T, db kv.DB) {
	ours := []string{"kvtest/e/1", "kvtest/e/2", "\xff\xff\xff"}
	setAll(t, db, ours...)
	for _, reverse := range []bool{false, true} {
		got := scanKeys(t, db, nil, kv.ScanOptions{Reverse: reverse})
		// The implementation may hold keys of its own; ours must all be
		// there and the whole in order.
		sorted := slices.IsSorted(got)
		if reverse {
			sorted = slices.IsSorted(reversed(got))
		}
		if !sorted {
			t.Errorf("scan of every key (reverse %v) is out of order: %q", reverse, got)
		}
		for _, k := range ours {
			if !slices.Contains(got, k) {
				t.Errorf("scan of every key (reverse %v) lacks %q: %q", reverse, k, got)
			}
		}
	}
}

// testScanManyWithWrites scans more keys than an implementation is likely
// to fetch at once, reading and writing through the same Tx from the
// callback (elsewhere than under the scanned prefix, whose view during the
// scan the contract leaves open).
func testScanManyWithWrites(t *testing.T, db kv.DB) {
	const n = 600
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("kvtest/m/%04d", i)
	}
	setAll(t, db, keys...)
	for _, reverse := range []bool{false, true} {
		var seen []string
		mustUpdate(t, db, func(tx kv.Tx) error {
			seen = seen[:0]
			return tx.Scan([]byte("kvtest/m/"), kv.ScanOptions{Reverse: reverse}, func(k, v []byte) error {
				seen = append(seen, string(k))
				got, err := tx.Get(k)
				if err != nil {
					return fmt.Errorf("Get %q inside the scan: %w", k, err)
				}
				if !bytes.Equal(got, v) {
					return fmt.Errorf("Get %q inside the scan = %q, scan passed %q", k, got, v)
				}
				return tx.Set(append([]byte("kvtest/mc/"), k...), []byte{1})
			})
		})
		want := keys
		if reverse {
			want = reversed(keys)
		}
		wantKeys(t, fmt.Sprintf("keys scanned (reverse %v)", reverse), seen, want...)
		copies := scanKeys(t, db, []byte("kvtest/mc/"), kv.ScanOptions{KeysOnly: true})
		if len(copies) != n {
			t.Errorf("writes from the scan callback (reverse %v): %d keys, want %d", reverse, len(copies), n)
		}
	}
	// From in the middle, across the fetches of a paging implementation.
	got := scanKeys(t, db, []byte("kvtest/m/"), kv.ScanOptions{From: []byte("kvtest/m/0300"), Reverse: true})
	if len(got) != 301 || got[0] != "kvtest/m/0300" || got[300] != "kvtest/m/0000" {
		t.Errorf("reverse scan from m/0300: %d keys, from %q to %q; want 301 from m/0300 to m/0000",
			len(got), first(got), last(got))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// testScanDeleting deletes every key a scan passes, from its callback: the
// scan still visits each key once, and the prefix ends empty.
func testScanDeleting(t *testing.T, db kv.DB) {
	const n = 600
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("kvtest/del/%04d", i)
	}
	for _, reverse := range []bool{false, true} {
		setAll(t, db, keys...)
		var seen []string
		mustUpdate(t, db, func(tx kv.Tx) error {
			seen = seen[:0]
			return tx.Scan([]byte("kvtest/del/"), kv.ScanOptions{Reverse: reverse, KeysOnly: true}, func(k, _ []byte) error {
				seen = append(seen, string(k))
				return tx.Delete(k)
			})
		})
		want := keys
		if reverse {
			want = reversed(keys)
		}
		wantKeys(t, fmt.Sprintf("keys scanned while deleting (reverse %v)", reverse), seen, want...)
		wantKeys(t, fmt.Sprintf("keys left (reverse %v)", reverse), scanKeys(t, db, []byte("kvtest/del/"), kv.ScanOptions{}))
	}
}
