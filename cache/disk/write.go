package disk

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/gotthard-proxy/gotthard/cache"
)

// Create opens a write of a new object under key. The body goes to a temporary file;
// Commit fsyncs it, renames it into place and then replaces the object's head file, so a
// reader or a restart sees the old object or the new one, never a mixture. The Writer
// is for one goroutine.
func (s *Store) Create(key string, meta *cache.Meta) (cache.Writer, error) {
	if meta.Size > s.opts.MaxObjectBytes {
		return nil, fmt.Errorf("disk: create: announced size %d over %d bytes: %w", meta.Size, s.opts.MaxObjectBytes, cache.ErrTooLarge)
	}
	m := meta.Clone()
	m.Size = 0
	if _, err := s.encodeHead(&head{key: key, meta: m}); err != nil {
		return nil, fmt.Errorf("disk: create: %w", err)
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.ops.RUnlock()
	slot := s.hash(key)
	if err := s.ensureLeaf(slot); err != nil {
		return nil, fmt.Errorf("disk: create: %w", err)
	}
	gen := s.gen.Add(1)
	tmp := s.bodyTmpPath(slot, gen)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, fmt.Errorf("disk: create: %w", err)
	}
	return &writer{s: s, key: key, slot: slot, gen: gen, meta: m, f: f, tmp: tmp}, nil
}

// ensureLeaf creates slot's leaf directory if it is not known to exist.
func (s *Store) ensureLeaf(slot uint64) error {
	p := leafPrefix(slot)
	s.mu.Lock()
	known := s.leaves[p]
	s.mu.Unlock()
	if known {
		return nil
	}
	leaf := s.leafDir(slot)
	if err := os.MkdirAll(leaf, dirPerm); err != nil {
		return err
	}
	if err := s.syncDir(leaf[:len(leaf)-3]); err != nil {
		return err
	}
	if err := s.syncDir(s.dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.leaves[p] = true
	s.mu.Unlock()
	return nil
}

// writer writes one object's body to a temporary file; see Store.Create.
type writer struct {
	s    *Store
	key  string
	slot uint64
	gen  uint64
	meta *cache.Meta
	f    *os.File
	tmp  string
	n    int64
	crc  uint32
	done bool  // Commit or Abort ran
	err  error // a failed Write; Commit returns it
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("disk: write after Commit or Abort")
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.n+int64(len(p)) > w.s.opts.MaxObjectBytes {
		w.Abort()
		return 0, fmt.Errorf("disk: body over %d bytes: %w", w.s.opts.MaxObjectBytes, cache.ErrTooLarge)
	}
	n, err := w.f.Write(p)
	w.crc = crc32.Update(w.crc, w.s.crc, p[:n])
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("disk: write: %w", err)
		return n, w.err
	}
	return n, nil
}

func (w *writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.tmp)
}

func (w *writer) Commit() error {
	if w.done {
		return errors.New("disk: Commit after Commit or Abort")
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.done = true
	if err := w.s.begin(); err != nil {
		w.f.Close()
		os.Remove(w.tmp)
		return err
	}
	defer w.s.ops.RUnlock()
	if err := w.commit(); err != nil {
		return fmt.Errorf("disk: commit: %w", err)
	}
	return nil
}

// commit makes the body durable under its own name, then commits it by renaming a new
// head file over the slot's. See the package doc for the order and why.
func (w *writer) commit() error {
	s := w.s
	var err error
	if !s.opts.NoSync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.tmp)
		return err
	}
	body := s.bodyPath(w.slot, w.gen)
	if err := os.Rename(w.tmp, body); err != nil {
		os.Remove(w.tmp)
		return err
	}
	// The body's name must be durable before a head names it: after a power loss a
	// head whose body is missing would cost the object it replaced.
	if err := s.syncDir(s.leafDir(w.slot)); err != nil {
		os.Remove(body)
		return err
	}
	w.meta.Size = w.n
	e := &entry{key: w.key, gen: w.gen, bodySize: w.n, bodyCRC: w.crc, meta: w.meta}
	b, err := s.encodeHead(&head{key: w.key, gen: w.gen, bodySize: w.n, bodyCRC: w.crc, meta: w.meta})
	if err == nil {
		e.headBytes = int64(len(b))
		if e.bytes() > s.opts.MaxBytes {
			err = fmt.Errorf("object of %d bytes over the store's %d: %w", e.bytes(), s.opts.MaxBytes, cache.ErrTooLarge)
		}
	}
	tmp := s.headTmpPath(w.slot, w.gen)
	if err == nil {
		err = s.writeFile(tmp, b)
	}
	if err != nil {
		os.Remove(body)
		return err
	}

	st := s.stripe(w.slot)
	st.Lock()
	if err := os.Rename(tmp, s.headPath(w.slot)); err != nil {
		st.Unlock()
		os.Remove(tmp)
		os.Remove(body)
		return err
	}
	// Committed: a restart finds the new object. Until the index changes below, a
	// lookup still opens the old body, which is removed only after.
	s.mu.Lock()
	var old []string
	if prev := s.index[w.slot]; prev != nil {
		s.dropLocked(w.slot, prev)
		old = append(old, s.bodyPath(w.slot, prev.gen))
	}
	victims := s.addLocked(w.slot, e)
	s.mu.Unlock()
	st.Unlock()

	s.removeAll(old...)
	s.removeVictims(victims)
	return s.syncDir(s.leafDir(w.slot))
}
