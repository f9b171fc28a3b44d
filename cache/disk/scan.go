package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// scanned is an object found by scan, before it enters the index.
type scanned struct {
	slot uint64
	e    *entry
}

// scan rebuilds the index from the directory. It runs in Open, before the store is
// shared.
func (s *Store) scan() error {
	top, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("disk: open: %w", err)
	}
	var found []scanned
	var maxGen uint64
	var leftovers, damaged int64
	for _, d1 := range top {
		hi, ok := parseHex2(d1.Name())
		if !ok || !d1.IsDir() {
			continue
		}
		dir1 := filepath.Join(s.dir, d1.Name())
		subs, err := os.ReadDir(dir1)
		if err != nil {
			return fmt.Errorf("disk: open: %w", err)
		}
		for _, d2 := range subs {
			lo, ok := parseHex2(d2.Name())
			if !ok || !d2.IsDir() {
				continue
			}
			prefix := uint16(hi)<<8 | uint16(lo)
			r, err := s.scanLeaf(filepath.Join(dir1, d2.Name()), prefix)
			if err != nil {
				return err
			}
			s.leaves[prefix] = true
			found = append(found, r.found...)
			maxGen = max(maxGen, r.maxGen)
			leftovers += r.leftovers
			damaged += r.damaged
		}
	}
	s.gen.Store(maxGen)
	s.discarded.Store(leftovers + damaged)
	if leftovers+damaged > 0 {
		s.log.Info("disk: open removed files", "dir", s.dir, "leftovers", leftovers, "damaged", damaged)
	}
	// Generations grow with each write, so their order is the order of the writes: the
	// policy starts from it, oldest first.
	slices.SortFunc(found, func(a, b scanned) int {
		switch {
		case a.e.gen < b.e.gen:
			return -1
		case a.e.gen > b.e.gen:
			return 1
		}
		return 0
	})
	var victims []victim
	s.mu.Lock()
	for _, f := range found {
		victims = append(victims, s.addLocked(f.slot, f.e)...)
	}
	s.mu.Unlock()
	s.removeVictims(victims) // (over MaxBytes: the store was reopened with a smaller one)
	return nil
}

// leafScan is what scanLeaf found in one leaf directory.
type leafScan struct {
	found              []scanned
	maxGen             uint64
	leftovers, damaged int64
}

// scanLeaf reads one leaf directory: it removes temporary files, checks each head file
// against its body, and removes bodies no valid head names.
func (s *Store) scanLeaf(dir string, prefix uint16) (leafScan, error) {
	var r leafScan
	ents, err := os.ReadDir(dir)
	if err != nil {
		return r, fmt.Errorf("disk: open: %w", err)
	}
	type bodyID struct{ slot, gen uint64 }
	bodies := make(map[bodyID]bool)
	var heads []uint64
	remove := func(name string, count *int64) error {
		err := os.Remove(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disk: open: %w", err)
		}
		*count++
		return nil
	}
	for _, de := range ents {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		if base, ok := strings.CutSuffix(name, tmpSuffix); ok {
			if _, gen, ok := parseFileName(base); ok {
				r.maxGen = max(r.maxGen, gen)
			}
			if err := remove(name, &r.leftovers); err != nil {
				return r, err
			}
			continue
		}
		slot, gen, ok := parseFileName(name)
		switch {
		case !ok:
			continue // not ours: leave it
		case leafPrefix(slot) != prefix:
			if err := remove(name, &r.damaged); err != nil {
				return r, err
			}
		case strings.HasSuffix(name, headSuffix):
			heads = append(heads, slot)
		default:
			bodies[bodyID{slot, gen}] = true
			r.maxGen = max(r.maxGen, gen)
		}
	}
	for _, slot := range heads {
		e, reason := s.verify(slot)
		if e == nil {
			s.log.Warn("disk: open removed a damaged object", "file", s.headPath(slot), "reason", reason)
			if err := remove(filepath.Base(s.headPath(slot)), &r.damaged); err != nil {
				return r, err
			}
			continue
		}
		delete(bodies, bodyID{slot, e.gen})
		r.found = append(r.found, scanned{slot, e})
		r.maxGen = max(r.maxGen, e.gen)
	}
	// What remains are bodies no valid head names: a write interrupted between the body
	// and the head, a body replaced just before a crash, or one whose head was damaged.
	for id := range bodies {
		if err := remove(filepath.Base(s.bodyPath(id.slot, id.gen)), &r.leftovers); err != nil {
			return r, err
		}
	}
	return r, nil
}

// verify reads slot's head file and checks its body. It returns the object's index
// entry, or nil and why the object is rejected.
func (s *Store) verify(slot uint64) (*entry, string) {
	h, err := s.readHead(s.headPath(slot))
	if err != nil {
		return nil, err.Error()
	}
	if s.hash(h.key) != slot {
		return nil, "the key does not hash to the file's name"
	}
	body := s.bodyPath(slot, h.gen)
	fi, err := os.Stat(body)
	if err != nil {
		return nil, "body: " + err.Error()
	}
	if fi.Size() != h.bodySize {
		return nil, fmt.Sprintf("body of %d bytes, head says %d", fi.Size(), h.bodySize)
	}
	if !s.opts.SkipBodyCheck {
		crc, n, err := s.fileCRC(body)
		if err != nil {
			return nil, "body: " + err.Error()
		}
		if n != h.bodySize || crc != h.bodyCRC {
			return nil, "body checksum mismatch"
		}
	}
	return &entry{key: h.key, gen: h.gen, bodySize: h.bodySize, bodyCRC: h.bodyCRC, headBytes: h.fileLen, meta: h.meta}, ""
}

// parseFileName parses "<slot>.m" (gen 0) and "<slot>-<gen>.b", the names of head and
// body files.
func parseFileName(name string) (slot, gen uint64, ok bool) {
	if base, found := strings.CutSuffix(name, headSuffix); found {
		slot, ok = parseHex(base)
		return slot, 0, ok
	}
	base, found := strings.CutSuffix(name, bodySuffix)
	if !found || len(base) != 2*hexSlotLen+1 || base[hexSlotLen] != '-' {
		return 0, 0, false
	}
	slot, ok1 := parseHex(base[:hexSlotLen])
	gen, ok2 := parseHex(base[hexSlotLen+1:])
	return slot, gen, ok1 && ok2
}

// parseHex2 parses a directory level's name: two lower-case hex digits.
func parseHex2(s string) (byte, bool) {
	if len(s) != 2 {
		return 0, false
	}
	v, ok := parseHex("00000000000000" + s)
	return byte(v), ok
}
