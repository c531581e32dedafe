package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

func TestDecisionsSearch(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	at := func(min int) time.Time { return jan2026.Add(time.Duration(min) * time.Minute) }
	recs := []*engine.Record{
		record("tx_1", at(1), "acc_a", "fp_x", engine.Allow),
		record("tx_2", at(2), "acc_a", "fp_y", engine.Deny),
		record("tx_3", at(3), "acc_b", "fp_x", engine.Challenge),
		record("tx_4", at(4), "acc_a", "fp_x", engine.Deny),
		record("tx_5", at(5), "acc_b", "fp_y", engine.Allow),
		// two at one instant: ordered by decision id
		record("tx_6", at(6), "acc_a", "fp_x", engine.Allow),
		record("tx_7", at(6), "acc_a", "fp_x", engine.Allow),
		// another month, another partition
		record("tx_8", at(60*24*40), "acc_a", "fp_x", engine.Allow),
	}
	commit(t, d, recs...)
	idOf := func(txs ...string) []string {
		var out []string
		for _, tx := range txs {
			out = append(out, engine.DecisionID(tx))
		}
		return out
	}
	tied := idOf("tx_6", "tx_7")
	slices.Sort(tied)

	for _, tc := range []struct {
		name string
		q    engine.Query
		want []string
	}{
		{"all newest first", engine.Query{}, append(append(idOf("tx_8"), tied...), idOf("tx_5", "tx_4", "tx_3", "tx_2", "tx_1")...)},
		{"account", engine.Query{AccountID: "acc_b"}, idOf("tx_5", "tx_3")},
		{"card", engine.Query{CardFingerprint: "fp_y"}, idOf("tx_5", "tx_2")},
		{"outcome", engine.Query{Outcome: engine.Deny}, idOf("tx_4", "tx_2")},
		{"account and outcome", engine.Query{AccountID: "acc_a", Outcome: engine.Allow}, append(append(idOf("tx_8"), tied...), idOf("tx_1")...)},
		{"from inclusive, to exclusive", engine.Query{From: at(2), To: at(5)}, idOf("tx_4", "tx_3", "tx_2")},
		{"transaction", engine.Query{TransactionID: "tx_3"}, idOf("tx_3")},
		{"transaction not matching", engine.Query{TransactionID: "tx_3", AccountID: "acc_a"}, nil},
		{"transaction unknown", engine.Query{TransactionID: "tx_none"}, nil},
		{"nothing", engine.Query{AccountID: "acc_none"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := d.Search(ctx, tc.q)
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("got %v, want %v", ids(got), tc.want)
			}
			if next != "" {
				t.Errorf("cursor %q on the only page", next)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		all, _, err := d.Search(ctx, engine.Query{AccountID: "acc_a"})
		if err != nil {
			t.Fatal(err)
		}
		var paged []string
		q := engine.Query{AccountID: "acc_a", Limit: 2}
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatal("paging does not end")
			}
			got, next, err := d.Search(ctx, q)
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			if len(got) > 2 {
				t.Fatalf("page %d has %d records", pages, len(got))
			}
			paged = append(paged, ids(got)...)
			if next == "" {
				break
			}
			q.Cursor = next
		}
		if !slices.Equal(paged, ids(all)) {
			t.Errorf("paged %v, want %v", paged, ids(all))
		}
	})

	t.Run("bad cursor", func(t *testing.T) {
		for _, c := range []string{"!!", "AAAA", "AAAAAAAAAAAAAAAAAAAA"} {
			_, _, err := d.Search(ctx, engine.Query{Cursor: c})
			var fe *engine.FieldError
			if !errors.As(err, &fe) || fe.Field != "cursor" || fe.Code != "invalid_cursor" {
				t.Errorf("cursor %q: %v, want an invalid_cursor field error", c, err)
			}
		}
	})
}

func TestDecisionsSearchLimits(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	const n = 510
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := record(fmt.Sprintf("tx_%03d", i), jan2026.Add(time.Duration(i)*time.Second), "acc", "fp", engine.Allow)
			if err := d.Commit(ctx, rec); err != nil {
				t.Errorf("commit: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, tc := range []struct {
		limit, want int
	}{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {10000, 500}} {
		got, next, err := d.Search(ctx, engine.Query{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || next == "" {
			t.Errorf("limit %d: %d records, cursor %q; want %d and a cursor", tc.limit, len(got), next, tc.want)
		}
	}
}
