package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// TestImportKeepsIDsOrderAndLabels: imported records keep their decision
// ids and labels, take this log's sequence numbers in their order, and a
// second import of the same records writes nothing, adds only the labels
// they gained meanwhile and names a transaction this log decided itself.
func TestImportKeepsIDsOrderAndLabels(t *testing.T) {
	t.Parallel()
	d, _ := newLog(t)
	ctx := context.Background()
	own := record("tx_own", jan2026, "acc_1", "fp_1", engine.Allow)
	commit(t, d, own)

	var recs []*engine.Record
	for _, tx := range []string{"tx_c", "tx_a", "tx_b"} {
		recs = append(recs, fullRecord(tx, jan2026.Add(-48*time.Hour)))
	}
	fraud := engine.Label{Label: engine.LabelFraud, Note: "chargeback", Source: "gateway", CreatedAt: jan2026}
	recs[1].Labels = []engine.Label{fraud}
	got, err := d.Import(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if got.Imported != 3 || got.Present != 0 || got.Labels != 1 || len(got.Conflicts) != 0 {
		t.Errorf("first import: %+v, want 3 imported and 1 label", got)
	}
	var seqs []uint64
	for _, rec := range recs {
		stored, err := d.Get(ctx, rec.ID)
		if err != nil {
			t.Fatalf("get %s: %v", rec.ID, err)
		}
		want := *rec
		want.Seq = stored.Seq
		sameRecord(t, rec.TransactionID, stored, &want)
		seqs = append(seqs, stored.Seq)
	}
	if !(own.Seq < seqs[0] && seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Errorf("sequence numbers: own %d, imported %v; want after it, in import order", own.Seq, seqs)
	}

	// Again, with a label more and this log's own transaction among them.
	legit := engine.Label{Label: engine.LabelLegit, Source: "analyst", CreatedAt: jan2026.Add(time.Hour)}
	again := []*engine.Record{fullRecord("tx_c", jan2026.Add(-48*time.Hour)), fullRecord("tx_a", jan2026.Add(-48*time.Hour)), fullRecord("tx_own", jan2026)}
	again[0].Labels = []engine.Label{legit}
	again[1].Labels = []engine.Label{fraud}
	again[2].ID = "dec_made_elsewhere" // ids derive from transaction ids; an older store's may not
	got, err = d.Import(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if got.Imported != 0 || got.Present != 2 || got.Labels != 1 || !reflect.DeepEqual(got.Conflicts, []string{"tx_own"}) {
		t.Errorf("second import: %+v, want 2 present, 1 label, tx_own a conflict", got)
	}
	if n, err := d.Count(ctx); err != nil || n != 4 {
		t.Errorf("count = %d, %v; want 4", n, err)
	}
	stored, err := d.Get(ctx, recs[0].ID)
	if err != nil || !reflect.DeepEqual(stored.Labels, []engine.Label{legit}) {
		t.Errorf("labels of tx_c = %+v, %v; want the one added on the second import", stored.Labels, err)
	}
}
