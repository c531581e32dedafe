package features_test

import (
	"context"
	"testing"
	"time"

	"github.com/riskengine/risk/features/kv"
)

// TestScanKVTellsExpiry: ScanKV returns the keys of one prefix in order,
// with when each expires, zero for a key that does not.
func TestScanKVTellsExpiry(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	ctx := context.Background()
	err := s.KV().Update(ctx, func(tx kv.Tx) error {
		if err := tx.Set([]byte("li/a"), []byte("1")); err != nil {
			return err
		}
		if err := tx.SetTTL([]byte("li/b"), []byte("2"), time.Hour); err != nil {
			return err
		}
		return tx.Set([]byte("lm/x"), []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		key, value string
		expires    time.Time
	}
	var got []row
	before := time.Now()
	err = s.ScanKV(ctx, []byte("li/"), func(k, v []byte, exp time.Time) error {
		got = append(got, row{string(k), string(v), exp})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].key != "li/a" || got[0].value != "1" || !got[0].expires.IsZero() || got[1].key != "li/b" || got[1].value != "2" {
		t.Fatalf("ScanKV(li/) = %+v, want li/a without expiry and li/b", got)
	}
	if left := got[1].expires.Sub(before); left < 59*time.Minute || left > time.Hour+time.Second {
		t.Errorf("li/b expires in %v, want about an hour", left)
	}
}
