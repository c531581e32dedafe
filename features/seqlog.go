package features

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
)

// The sequence log orders decision records by sequence number: it is what
// the feature replay after a restart, backfills and backtests walk. Each
// group commit writes one key for all its decisions, whose numbers are
// consecutive:
//
//	qs/<first seq, 8 bytes big-endian>  ->  list of decision ids (str),
//	                                        the first seq's first
//
// with the records' retention as TTL. A Badger key costs about as much to
// write as a small record, so one per group rather than one per decision
// saves most of that cost under load. Stores written before kept one
// q/<seq> -> id key per decision; those are read first, as every one of
// them is older than any group.
const prefixSeqGroup = keyspace.SeqGroup

// writeSeqGroup writes the sequence log key of the records of one group
// commit, which hold consecutive sequence numbers, in txn.
func (s *Store) writeSeqGroup(txn *badger.Txn, group []*commitReq) error {
	if len(group) == 0 {
		return nil
	}
	n := binary.MaxVarintLen64
	for _, r := range group {
		n += strSize(r.rec.ID)
	}
	v := make([]byte, 0, n)
	v = binary.AppendUvarint(v, uint64(len(group)))
	for _, r := range group {
		v = appendString(v, r.rec.ID)
	}
	k := binary.BigEndian.AppendUint64([]byte(prefixSeqGroup), group[0].rec.Seq)
	return txn.SetEntry(badger.NewEntry(k, v).WithTTL(s.opts.Retention))
}

// decodeSeqGroup returns the decision ids of a sequence log value.
func decodeSeqGroup(v []byte) ([]string, error) {
	d := recordDecoder{b: v, s: string(v)}
	ids := make([]string, d.count(1))
	for i := range ids {
		ids[i] = d.string()
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail()
	}
	if d.err != nil || len(ids) == 0 {
		return nil, fmt.Errorf("sequence log: %w", errCorruptRecord)
	}
	return ids, nil
}

// lastSeq returns the highest sequence number stored, 0 when none is.
func (s *Store) lastSeq() (uint64, error) {
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range []string{prefixSeq, prefixSeqGroup} {
			it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(p)})
			it.Seek(append([]byte(p), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
			if !it.Valid() {
				it.Close()
				continue
			}
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(p):])
			if p == prefixSeqGroup {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				ids, err := decodeSeqGroup(v)
				if err != nil {
					it.Close()
					return err
				}
				seq += uint64(len(ids)) - 1
			}
			it.Close()
			last = max(last, seq)
		}
		return nil
	})
	return last, err
}

// scanSeq calls fn for every stored decision with sequence number >= from,
// in order.
func (s *Store) scanSeq(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		visit := func(id string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := s.getRecord(txn, id)
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil // expired
			}
			if err != nil {
				return err
			}
			return fn(rec)
		}

		// Records of stores written before the sequence log had groups.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSeq)})
		defer it.Close()
		for it.Seek(binary.BigEndian.AppendUint64([]byte(prefixSeq), from)); it.Valid(); it.Next() {
			id, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := visit(string(id)); err != nil {
				return err
			}
		}

		// Start at the group holding from: the last one starting at or
		// before it.
		start := from
		back := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixSeqGroup)})
		back.Seek(binary.BigEndian.AppendUint64([]byte(prefixSeqGroup), from))
		if back.Valid() {
			start = binary.BigEndian.Uint64(back.Item().Key()[len(prefixSeqGroup):])
		}
		back.Close()
		groups := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSeqGroup)})
		defer groups.Close()
		for groups.Seek(binary.BigEndian.AppendUint64([]byte(prefixSeqGroup), start)); groups.Valid(); groups.Next() {
			first := binary.BigEndian.Uint64(groups.Item().Key()[len(prefixSeqGroup):])
			v, err := groups.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			ids, err := decodeSeqGroup(v)
			if err != nil {
				return err
			}
			for i, id := range ids {
				if first+uint64(i) < from {
					continue
				}
				if err := visit(id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
