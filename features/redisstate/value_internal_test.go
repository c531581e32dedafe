package redisstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

func TestValueRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := value{version: 41, rebuilt: 900, state: []byte{1, 0}}
	v.note(txHash("a"), 0, now.Add(-25*time.Hour))
	v.note(txHash("b"), 2, now.Add(-time.Hour))
	v.note(txHash("c"), 1, now)
	v.trim(now)
	got, err := decodeValue(v.encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := value{version: 42, rebuilt: 900, flags: flagDropped, ring: []counted{
		{hash: txHash("b"), labels: 2, at: now.Add(-time.Hour).Unix()},
		{hash: txHash("c"), labels: 1, at: now.Unix()},
	}, state: []byte{1, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestRingBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var v value
	for i := range ringSize {
		v.note(txHash(fmt.Sprint(i)), 0, now)
		v.trim(now)
	}
	if len(v.ring) != ringSize || v.flags != 0 {
		t.Fatalf("%d entries, flags %d after %d notes; want %d, none dropped", len(v.ring), v.flags, ringSize, ringSize)
	}
	// Counting one again moves it to the newest; one more drops the oldest.
	v.note(txHash("0"), 1, now)
	v.note(txHash("new"), 0, now)
	v.trim(now)
	if _, ok := v.find(txHash("1")); ok || v.flags != flagDropped {
		t.Errorf("oldest kept (flags %d)", v.flags)
	}
	if c, ok := v.find(txHash("0")); !ok || c.labels != 1 {
		t.Errorf("entry counted again: %+v, %v", c, ok)
	}
	if len(v.ring) != ringSize {
		t.Errorf("%d entries, want %d", len(v.ring), ringSize)
	}
	// A day later, all but what was counted then are dropped.
	later := now.Add(ringAge + time.Second)
	v.note(txHash("later"), 0, later)
	v.trim(later)
	if len(v.ring) != 1 {
		t.Errorf("%d entries after the age bound, want 1", len(v.ring))
	}
}

func TestCountedBefore(t *testing.T) {
	rec := func(seq uint64, labels int) *engine.Record {
		r := &engine.Record{Seq: seq}
		r.TransactionID = "tx"
		for range labels {
			r.Labels = append(r.Labels, engine.Label{Label: "fraud"})
		}
		return r
	}
	held := value{ring: []counted{{hash: txHash("tx"), labels: 1}}}
	for _, tt := range []struct {
		name    string
		val     value
		rec     *engine.Record
		rebuild bool
		want    int
	}{
		{"in the ring", held, rec(5, 2), false, 1},
		{"in the ring, rebuild", held, rec(5, 2), true, 1},
		{"never dropped", value{}, rec(5, 2), false, features.NotCounted},
		{"dropped, no labels", value{flags: flagDropped}, rec(5, 0), false, features.NotCounted},
		{"dropped, labelled", value{flags: flagDropped}, rec(5, 2), false, 1},
		{"rebuild below its mark", value{rebuilt: 5}, rec(5, 2), true, 2},
		{"rebuild above its mark", value{rebuilt: 4, flags: flagDropped}, rec(5, 2), true, features.NotCounted},
		{"live below a rebuild's mark", value{rebuilt: 5}, rec(5, 0), false, features.NotCounted},
		{"rebuild, no sequence", value{rebuilt: 5}, rec(0, 0), true, features.NotCounted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := countedBefore(&tt.val, tt.rec, tt.rebuild); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDecodeValueRefuses(t *testing.T) {
	ring := func(b ...byte) []byte { return append(binary.BigEndian.AppendUint64(nil, 1<<56|3), b...) }
	for name, v := range map[string][]byte{
		"short":          {0, 0, 0},
		"unknown format": binary.BigEndian.AppendUint64(nil, 2<<56|3),
		"no ring":        ring(),
		"ring too long":  ring(0, 0, ringSize+1),
		"entry cut":      ring(0, 0, 1, 1, 2, 3),
	} {
		if _, err := decodeValue(v); !errors.Is(err, engine.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeValue: no input panics, and what decodes encodes back to the
// same bytes, one version on.
func FuzzDecodeValue(f *testing.F) {
	v := value{version: 7, rebuilt: 3, ring: []counted{{hash: 1, labels: 2, at: 3}}, state: []byte{1, 0}}
	f.Add(v.encode(nil))
	f.Add(binary.BigEndian.AppendUint64(nil, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil || b[0] != formatRing {
			return
		}
		v.version--
		if got := v.encode(nil); !bytes.Equal(got, b) {
			// Varints have several spellings; a second round must be stable.
			again, err := decodeValue(got)
			if err != nil {
				t.Fatalf("re-encoding does not decode: %v", err)
			}
			again.version--
			if !bytes.Equal(again.encode(nil), got) {
				t.Fatalf("encoding unstable: %x", b)
			}
		}
	})
}
