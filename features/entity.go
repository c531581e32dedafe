package features

import (
	"encoding/binary"
	"strings"

	"github.com/riskengine/risk/engine"
)

// entity is the feature state of one entity: one value of an entity spec
// (a card fingerprint, an account and merchant pair), holding the window of
// every feature kept per that spec. Features sharing an entity share one
// cache entry and one Badger value, so a decision costs one cache lookup
// and at most one write per entity rather than per feature.
//
// An entity is guarded by its cache shard's lock.
type entity struct {
	// key is the cache key (see entityKey), kept so the cache indexes the
	// entity without converting the key on every update. Not encoded.
	key  string
	wins []*window
}

// find returns f's window, or nil when the entity has none for f's
// current state (no event yet, or only state of an earlier definition).
func (e *entity) find(f *feature) *window {
	for _, w := range e.wins {
		if w.name == f.def.Name {
			if w.epoch == f.epoch {
				return w
			}
			return nil
		}
	}
	return nil
}

// get returns f's window, creating it, or replacing one left by an earlier
// definition of the same name.
func (e *entity) get(f *feature) *window {
	for i, w := range e.wins {
		if w.name == f.def.Name {
			if w.epoch != f.epoch {
				w = &window{name: f.def.Name, epoch: f.epoch}
				e.wins[i] = w
			}
			return w
		}
	}
	w := &window{name: f.def.Name, epoch: f.epoch}
	e.wins = append(e.wins, w)
	return w
}

// live drops the windows that belong to no feature of fs (a deleted
// feature, or an earlier definition of one) and returns how long Badger
// must keep the entity: the longest window plus two buckets. Zero means
// nothing is left to keep.
func (e *entity) live(fs *featureSet) (ttl int64) {
	n := 0
	for _, w := range e.wins {
		f := fs.byName[w.name]
		if f == nil || f.epoch != w.epoch {
			continue
		}
		e.wins[n] = w
		n++
		ttl = max(ttl, int64(f.window+2*f.bucket))
	}
	clear(e.wins[n:])
	e.wins = e.wins[:n]
	return ttl
}

// Encoding of an entity (version 1):
//
//	byte version | uvarint n | per window: uvarint len, name, uvarint
//	epoch, uvarint len, window encoding (window.go)
const entityVersion = 1

func (e *entity) encode(buf []byte) []byte {
	buf = append(buf, entityVersion)
	buf = binary.AppendUvarint(buf, uint64(len(e.wins)))
	for _, w := range e.wins {
		buf = binary.AppendUvarint(buf, uint64(len(w.name)))
		buf = append(buf, w.name...)
		buf = binary.AppendUvarint(buf, w.epoch)
		// The window's length goes first; encode after a reserved byte
		// and move it only when the length needs more than one.
		at := len(buf)
		buf = append(buf, 0)
		buf = w.encode(buf)
		n := len(buf) - at - 1
		if n < 0x80 {
			buf[at] = byte(n)
			continue
		}
		var l [binary.MaxVarintLen64]byte
		ln := binary.PutUvarint(l[:], uint64(n))
		buf = append(buf, l[:ln-1]...)
		copy(buf[at+ln:], buf[at+1:at+1+n])
		copy(buf[at:], l[:ln])
	}
	return buf
}

func decodeEntity(data []byte) (*entity, error) {
	d := decoder{b: data}
	if d.byte() != entityVersion {
		return nil, errCorrupt
	}
	n := d.uvarint()
	if d.err != nil || n > MaxDefinitions+8 {
		return nil, errCorrupt
	}
	e := &entity{wins: make([]*window, 0, n)}
	for range n {
		name := string(d.bytes(d.uvarint()))
		epoch := d.uvarint()
		raw := d.bytes(d.uvarint())
		if d.err != nil {
			return nil, d.err
		}
		w, err := decodeWindow(raw)
		if err != nil {
			return nil, err
		}
		w.name, w.epoch = name, epoch
		e.wins = append(e.wins, w)
	}
	return e, nil
}

// entitySpec is how an entity spec is named in keys: its paths joined by
// commas ("account.id,merchant.id").
func entitySpec(paths Paths) string { return strings.Join(paths, ",") }

// entityKey appends the cache and storage key of p's entity for spec (the
// spec, then each path's value after a NUL) to buf; ok is false when any
// path is absent from p.
func entityKey(spec string, paths Paths, p *engine.Payment, buf []byte) ([]byte, bool) {
	buf = append(buf, spec...)
	for _, path := range paths {
		if s, text := p.Text(path); text { // the common case, without boxing
			if s == "" {
				return buf, false
			}
			buf = append(append(buf, 0), s...)
			continue
		}
		v, ok := p.Field(path)
		if !ok {
			return buf, false
		}
		buf = append(buf, 0)
		buf = appendValue(buf, v)
	}
	return buf, true
}
