package features

import (
	"strings"

	"github.com/riskengine/risk/engine"
)

var _ engine.Labeler = (*Store)(nil)

// applyLabel counts a decided payment into the features whose where reads
// labels, now that rec carries a new last label. A label arrives after the
// payment was already recorded into the windows (with no labels), so a
// feature such as
//
//	where: '"chargeback" in labels'
//
// counts the payment from the moment its label arrives, at the payment's
// own occurred_at (like a replay or backfill of the labelled record would):
// a payment older than the window is not counted. A payment the filter
// already admitted before the label is not counted twice. Features still
// being backfilled are skipped: the backfill reads the stored labels.
//
// The caller holds labelMu, so labels of one decision apply in order.
func (s *Store) applyLabel(rec *engine.Record) {
	n := len(rec.Labels)
	if n == 0 {
		return
	}
	prev := *rec
	prev.Labels = rec.Labels[:n-1]
	for _, f := range s.defs.Load().list {
		if f.hidden || f.where == nil || !strings.Contains(f.def.Where, "labels") || !s.ready(f) {
			continue
		}
		if before, err := f.where.Match(&prev); err == nil && before {
			continue
		}
		s.applyOne(rec, f, applyLabelled) // applies only when the filter admits rec now
	}
}
