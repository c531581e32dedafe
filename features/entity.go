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
//
// Its windows are held by value, not by pointer: the cache holds a few
// hundred thousand entities, and a heap object per window was about a
// quarter of what the garbage collector had to mark. A *window from find
// or get is valid until the next get on the same entity (which may move
// the windows), so callers use it at once and do not keep it.
type entity struct {
	// key is the cache key (see entityKey), kept so the cache indexes the
	// entity without converting the key on every update. Not encoded.
	key  string
	wins []window
}

// slot returns the index of the window named name, or -1.
func (e *entity) slot(name string) int {
	for i := range e.wins {
		if e.wins[i].name == name {
			return i
		}
	}
	return -1
}

// find returns f's window, or nil when the entity has none for f's
// current state (no event yet, or only state of an earlier definition).
func (e *entity) find(f *feature) *window {
	if i := e.slot(f.def.Name); i >= 0 && e.wins[i].epoch == f.epoch {
		return &e.wins[i]
	}
	return nil
}

// get returns f's window, creating it, or replacing one left by an earlier
// definition of the same name.
func (e *entity) get(f *feature) *window {
	i := e.slot(f.def.Name)
	switch {
	case i < 0:
		e.wins = append(e.wins, window{name: f.def.Name, epoch: f.epoch})
		i = len(e.wins) - 1
	case e.wins[i].epoch != f.epoch:
		e.wins[i] = window{name: f.def.Name, epoch: f.epoch}
	}
	return &e.wins[i]
}

// live drops the windows that belong to no feature of fs (a deleted
// feature, or an earlier definition of one) and returns how long Badger
// must keep the entity: the longest window plus two buckets. Zero means
// nothing is left to keep.
func (e *entity) live(fs *featureSet) (ttl int64) {
	n := 0
	for i := range e.wins {
		w := &e.wins[i]
		f := fs.byName[w.name]
		if f == nil || f.epoch != w.epoch {
			continue
		}
		e.wins[n] = *w
		n++
		ttl = max(ttl, int64(f.window+2*f.bucket))
	}
	clear(e.wins[n:])
	e.wins = e.wins[:n]
	return ttl
}

// Encoding of an entity (version 2):
//
//	byte version | uvarint n | per window: uvarint number of the feature
//	name (names.go), uvarint epoch, window encoding (window.go, which
//	knows its own length)
//
// Version 1 writes each name as uvarint len, name instead of its number.
// An entity is still written in version 1 when one of its windows has no
// number (none is ever missing for a live feature; migrated windows take
// that path), and both versions decode.
const entityVersion = 2

func (e *entity) encode(buf []byte, n *names) []byte {
	start := len(buf)
	buf = append(buf, entityVersion)
	buf = binary.AppendUvarint(buf, uint64(len(e.wins)))
	for i := range e.wins {
		w := &e.wins[i]
		id, ok := n.id(w.name)
		if !ok {
			return e.encodeV1(buf[:start])
		}
		buf = binary.AppendUvarint(buf, id)
		buf = binary.AppendUvarint(buf, w.epoch)
		buf = w.encode(buf)
	}
	return buf
}

// encodeV1 appends e in version 1, which writes names in full.
func (e *entity) encodeV1(buf []byte) []byte {
	buf = append(buf, 1)
	buf = binary.AppendUvarint(buf, uint64(len(e.wins)))
	for i := range e.wins {
		w := &e.wins[i]
		buf = binary.AppendUvarint(buf, uint64(len(w.name)))
		buf = append(buf, w.name...)
		buf = binary.AppendUvarint(buf, w.epoch)
		buf = w.encode(buf)
	}
	return buf
}

// decodeEntity decodes an entity; n resolves the names of version 2.
func decodeEntity(data []byte, n *names) (*entity, error) {
	d := decoder{b: data}
	version := d.byte()
	if version != 1 && version != entityVersion {
		return nil, errCorrupt
	}
	count := d.uvarint()
	if d.err != nil || count > MaxDefinitions+8 {
		return nil, errCorrupt
	}
	e := &entity{wins: make([]window, count)}
	for i := range e.wins {
		var name string
		if version == entityVersion {
			var ok bool
			if name, ok = n.name(d.uvarint()); !ok {
				return nil, errCorrupt
			}
		} else {
			name = string(d.bytes(d.uvarint()))
		}
		epoch := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		w := &e.wins[i]
		if err := readWindow(&d, w); err != nil {
			return nil, err
		}
		w.name, w.epoch = name, epoch
	}
	if len(d.b) != 0 {
		return nil, errCorrupt
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
