package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/gotthard-proxy/gotthard/cache/evict"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/cache"
)

// ErrClosed is returned by a [Store]'s methods after [Store.Close].
var ErrClosed = errors.New("disk: store closed")

// Options configures [Open]. The zero value is not valid: MaxBytes is required.
type Options struct {
	// MaxBytes bounds the bytes of the store's files (bodies and head files) on disk.
	// Committing an object that would pass it first evicts others. It must be > 0.
	MaxBytes int64
	// MaxObjectBytes bounds one object's body; a write past it fails with
	// cache.ErrTooLarge. It must not exceed MaxBytes. If zero, MaxBytes/8.
	MaxObjectBytes int64
	// NoSync skips fsync of files and directories. Objects then survive a crash of the
	// process but not of the machine: after a power loss an object may be lost, or its
	// body hold other bytes, which Open detects unless SkipBodyCheck is set. If false,
	// every commit is durable when Commit returns.
	NoSync bool
	// SkipBodyCheck makes Open check each body's length only, not its CRC-32C. Open
	// then reads only the head files instead of every byte in the store. If false,
	// Open reads every body and removes those whose checksum does not match.
	SkipBodyCheck bool
	// Logger receives a summary of what Open removed and errors no caller can be told
	// of (a failed removal of a replaced body). If nil, slog.Default().
	Logger *slog.Logger

	// hash maps a key to its slot; tests inject a colliding one. If nil, the first 8
	// bytes of the key's SHA-256.
	hash func(string) uint64
}

// Stats are a store's counters, as [Store.Stats] returns them.
type Stats struct {
	// Objects is the number of committed objects.
	Objects int64
	// Bytes is the size of their files (bodies and head files).
	Bytes int64
	// Hits and Misses count lookups that found an object and that did not.
	Hits, Misses int64
	// Evictions counts objects removed to stay within MaxBytes.
	Evictions int64
	// Rejections counts commits the eviction policy did not admit (its TinyLFU found
	// the new object less likely to be asked for than those it would displace): their
	// files are removed at once.
	Rejections int64
	// Discarded counts the files Open removed: leftovers of interrupted writes, bodies
	// no head names, and objects whose head, length or checksum did not verify.
	Discarded int64
}

// Store is a [cache.Storage] on a directory: bounded in bytes, surviving a restart, never
// serving a torn object. It is safe for concurrent use. Only one Store (in any
// process) may have a directory open at a time.
type Store struct {
	// immutable after Open
	dir    string
	opts   Options
	hash   func(string) uint64
	crc    *crc32.Table
	log    *slog.Logger
	unlock func() error // releases the directory's lock file

	gen                  atomic.Uint64 // the last generation handed out
	hits, misses         atomic.Int64
	evictions, discarded atomic.Int64
	rejections           atomic.Int64
	closed               atomic.Bool

	// ops is held shared by each operation that changes files, and exclusively by
	// Close, so no file changes once Close returns.
	ops sync.RWMutex
	// stripes order the changes of head files: a slot's head is renamed or removed
	// only under stripes[slot%len], together with the index change it goes with.
	// Taken before mu, never while holding another stripe.
	stripes [64]sync.Mutex

	// mu guards the fields below. It is held for work in memory only, never across a
	// system call, so a lookup never waits for the disk.
	mu      sync.Mutex
	index   map[uint64]*entry
	ev      *evict.Cache[uint64, *entry] // the eviction policy; its OnEvict (onEvict) runs under mu
	evicted []victim                     // what the last calls of ev evicted (onEvict), for the caller to remove
	bytes   int64
	leaves  map[uint16]bool // leaf directories known to exist
}

// entry is the index's record of one committed object.
type entry struct {
	key       string
	gen       uint64
	bodySize  int64
	bodyCRC   uint32
	headBytes int64
	meta      *cache.Meta // immutable: UpdateMeta replaces the pointer
}

func (e *entry) bytes() int64 { return e.bodySize + e.headBytes }

// victim is an object evicted from the index whose files are still to be removed.
type victim struct{ slot, gen uint64 }

func sha256Slot(key string) uint64 {
	var buf [256]byte // keys up to its size hash without an allocation
	sum := sha256.Sum256(append(buf[:0], key...))
	return binary.BigEndian.Uint64(sum[:8])
}

// Open opens the store in dir, creating the directory if needed, and rebuilds its index
// from the files there. It removes leftovers of interrupted writes, bodies no head
// names, and objects that do not verify; then, if the store is over MaxBytes, it evicts
// down to it. The error names a bad option.
func Open(dir string, opts Options) (*Store, error) {
	switch {
	case opts.MaxBytes <= 0:
		return nil, fmt.Errorf("disk: Options.MaxBytes %d must be > 0", opts.MaxBytes)
	case opts.MaxObjectBytes < 0:
		return nil, fmt.Errorf("disk: Options.MaxObjectBytes %d must be ≥ 0", opts.MaxObjectBytes)
	case opts.MaxObjectBytes > opts.MaxBytes:
		return nil, fmt.Errorf("disk: Options.MaxObjectBytes %d exceeds Options.MaxBytes %d", opts.MaxObjectBytes, opts.MaxBytes)
	case dir == "":
		return nil, errors.New("disk: empty directory name")
	}
	if opts.MaxObjectBytes == 0 {
		opts.MaxObjectBytes = max(opts.MaxBytes/8, 1)
	}
	s := &Store{
		dir:    dir,
		opts:   opts,
		hash:   opts.hash,
		crc:    crc32.MakeTable(crc32.Castagnoli),
		log:    opts.Logger,
		index:  make(map[uint64]*entry),
		leaves: make(map[uint16]bool),
	}
	ev, err := evict.New(evict.Options[uint64, *entry]{Capacity: opts.MaxBytes, OnEvict: s.onEvict})
	if err != nil {
		return nil, fmt.Errorf("disk: Options.MaxBytes: %w", err)
	}
	s.ev = ev
	if s.hash == nil {
		s.hash = sha256Slot
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("disk: open: %w", err)
	}
	unlock, err := lockDir(dir + string(os.PathSeparator) + lockName)
	if err != nil {
		return nil, fmt.Errorf("disk: open %s: %w", dir, err)
	}
	s.unlock = unlock
	if err := s.scan(); err != nil {
		unlock()
		return nil, err
	}
	return s, nil
}

// Close releases the directory. It waits for the operations that change files to end;
// writes not yet committed then fail. Objects already returned by Lookup stay readable
// until they are closed. Close is idempotent.
func (s *Store) Close() error {
	s.ops.Lock()
	already := s.closed.Swap(true)
	s.ops.Unlock()
	if already {
		return nil
	}
	if err := s.unlock(); err != nil {
		return fmt.Errorf("disk: close: %w", err)
	}
	return nil
}

// begin starts an operation that changes files; the caller calls s.ops.RUnlock when it
// returns nil.
func (s *Store) begin() error {
	s.ops.RLock()
	if s.closed.Load() {
		s.ops.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) stripe(slot uint64) *sync.Mutex { return &s.stripes[slot%uint64(len(s.stripes))] }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Objects: int64(len(s.index)), Bytes: s.bytes}
	s.mu.Unlock()
	st.Hits = s.hits.Load()
	st.Misses = s.misses.Load()
	st.Evictions = s.evictions.Load()
	st.Rejections = s.rejections.Load()
	st.Discarded = s.discarded.Load()
	return st
}

// Lookup returns the object committed under key, or cache.ErrNotFound. The object holds
// its body file open: it reads the same bytes even if the object is replaced, purged or
// evicted meanwhile, until Close.
func (s *Store) Lookup(key string) (cache.Object, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	slot := s.hash(key)
	for range maxLookupRace {
		s.mu.Lock()
		e := s.index[slot]
		if e == nil || e.key != key {
			s.mu.Unlock()
			s.misses.Add(1)
			return nil, cache.ErrNotFound
		}
		s.ev.Get(slot) // (counts the hit for the policy)
		gen, size, meta := e.gen, e.bodySize, e.meta
		s.mu.Unlock()

		f, err := os.Open(s.bodyPath(slot, gen))
		if err == nil {
			s.hits.Add(1)
			return &object{f: f, meta: meta, size: size}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("disk: lookup: %w", err)
		}
		// The object was replaced or removed between the index and the open: look again.
	}
	s.misses.Add(1)
	return nil, cache.ErrNotFound
}

// UpdateMeta replaces the head of the object under key, keeping its body: it writes a
// new head file naming the same body and renames it over the old one. meta's Size is
// ignored; the stored one stays the body's length.
//
// A 304 updates the stored response it validated, whose ETag and Content-Length the
// updated head keeps (RFC 9111 §3.2, §4.3.4). If the stored head has either field and
// meta's differs, the object was replaced since the caller read it, and meta would
// describe another body: UpdateMeta then changes nothing and returns an error wrapping
// cache.ErrNotFound.
func (s *Store) UpdateMeta(key string, meta *cache.Meta) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.RUnlock()
	slot := s.hash(key)
	s.mu.Lock()
	e := s.index[slot]
	if e == nil || e.key != key {
		s.mu.Unlock()
		return fmt.Errorf("disk: update meta: %w", cache.ErrNotFound)
	}
	if !sameResponse(e.meta, meta) {
		s.mu.Unlock()
		return fmt.Errorf("disk: update meta: the stored object is another response: %w", cache.ErrNotFound)
	}
	h := head{key: key, gen: e.gen, bodySize: e.bodySize, bodyCRC: e.bodyCRC, meta: meta.Clone()}
	s.mu.Unlock()

	h.meta.Size = h.bodySize
	b, err := s.encodeHead(&h)
	if err != nil {
		return fmt.Errorf("disk: update meta: %w", err)
	}
	tmp := s.headTmpPath(slot, s.gen.Add(1))
	if err := s.writeFile(tmp, b); err != nil {
		return fmt.Errorf("disk: update meta: %w", err)
	}

	st := s.stripe(slot)
	st.Lock()
	s.mu.Lock()
	e = s.index[slot]
	current := e != nil && e.key == key && e.gen == h.gen && sameResponse(e.meta, meta)
	s.mu.Unlock()
	if !current {
		// Replaced or removed while the head was written: the update is for a body
		// that is no longer stored.
		st.Unlock()
		os.Remove(tmp)
		return fmt.Errorf("disk: update meta: the object was replaced or removed: %w", cache.ErrNotFound)
	}
	if err := os.Rename(tmp, s.headPath(slot)); err != nil {
		st.Unlock()
		os.Remove(tmp)
		return fmt.Errorf("disk: update meta: %w", err)
	}
	s.mu.Lock()
	// Only an eviction, which removes the head file under this stripe later, can have
	// dropped the entry since the check.
	var victims []victim
	if s.index[slot] == e {
		// The head's size is part of the object's weight: the policy gets it anew.
		s.dropLocked(slot, e)
		e.headBytes = int64(len(b))
		e.meta = h.meta
		victims = s.addLocked(slot, e)
	}
	s.mu.Unlock()
	st.Unlock()
	s.removeVictims(victims)
	if err := s.syncDir(s.leafDir(slot)); err != nil {
		return fmt.Errorf("disk: update meta: %w", err)
	}
	return nil
}

// sameResponse reports whether update may replace the head stored: it keeps the stored
// ETag (compared weakly, RFC 9110 §8.8.3.2) and Content-Length, where the stored head
// has them.
func sameResponse(stored, update *cache.Meta) bool {
	for _, name := range [...]string{"ETag", "Content-Length"} {
		want, ok := stored.Response.Header.Lookup(name)
		if !ok {
			continue
		}
		got := update.Response.Header.Get(name)
		if name == "ETag" {
			want, got = strings.TrimPrefix(want, "W/"), strings.TrimPrefix(got, "W/")
		}
		if got != want {
			return false
		}
	}
	return true
}

// Purge removes the object under key and reports whether there was one. A reader that
// holds the object keeps reading it.
func (s *Store) Purge(key string) (bool, error) {
	if err := s.begin(); err != nil {
		return false, err
	}
	defer s.ops.RUnlock()
	slot := s.hash(key)
	st := s.stripe(slot)
	st.Lock()
	s.mu.Lock()
	e := s.index[slot]
	if e == nil || e.key != key {
		s.mu.Unlock()
		st.Unlock()
		return false, nil
	}
	s.dropLocked(slot, e)
	s.mu.Unlock()
	err := os.Remove(s.headPath(slot))
	st.Unlock()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("disk: purge: %w", err)
	}
	s.removeAll(s.bodyPath(slot, e.gen))
	if err := s.syncDir(s.leafDir(slot)); err != nil {
		return true, fmt.Errorf("disk: purge: %w", err)
	}
	return true, nil
}

// dropLocked takes e out of the index and the policy. s.mu is held.
func (s *Store) dropLocked(slot uint64, e *entry) {
	delete(s.index, slot)
	s.ev.Remove(slot)
	s.bytes -= e.bytes()
}

// addLocked puts e into the index and the policy, and returns the objects whose files
// are to be removed: those the policy evicted to make room, and e's own if the policy
// does not admit it (its TinyLFU finds it less likely to be asked for than what it
// would displace). s.mu is held.
func (s *Store) addLocked(slot uint64, e *entry) []victim {
	s.index[slot] = e
	s.bytes += e.bytes()
	admitted := s.ev.Set(slot, e, e.bytes())
	out := s.evicted
	s.evicted = nil
	if !admitted {
		delete(s.index, slot)
		s.bytes -= e.bytes()
		out = append(out, victim{slot, e.gen})
		s.rejections.Add(1)
	}
	return out
}

// onEvict is the policy's OnEvict: an object it evicted leaves the index, and its files
// are left for the caller of addLocked to remove. s.mu is held.
func (s *Store) onEvict(slot uint64, e *entry, cause evict.Cause) {
	if cause != evict.Evicted {
		return // (removed or replaced by the store itself, which did the rest)
	}
	if s.index[slot] == e {
		delete(s.index, slot)
		s.bytes -= e.bytes()
	}
	s.evicted = append(s.evicted, victim{slot, e.gen})
	s.evictions.Add(1)
}

// removeVictims removes evicted objects' files. A head file is removed under its stripe
// and only while its slot is still empty: a commit that took the slot since the
// eviction has renamed its own head over the evicted one.
func (s *Store) removeVictims(victims []victim) {
	for _, v := range victims {
		st := s.stripe(v.slot)
		st.Lock()
		s.mu.Lock()
		_, taken := s.index[v.slot]
		s.mu.Unlock()
		if !taken {
			s.removeAll(s.headPath(v.slot))
		}
		st.Unlock()
		s.removeAll(s.bodyPath(v.slot, v.gen))
	}
}

// removeAll removes files no index entry names any more.
func (s *Store) removeAll(names ...string) {
	for _, name := range names {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("disk: remove", "file", name, "error", err)
		}
	}
}

// object is a committed object read from its body file.
type object struct {
	f    *os.File
	meta *cache.Meta
	size int64
}

func (o *object) Meta() *cache.Meta { return o.meta }
func (o *object) Size() int64       { return o.size }
func (o *object) Close() error      { return o.f.Close() }

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("disk: read at negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	if rest := o.size - off; int64(len(p)) > rest {
		n, err := o.f.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return o.f.ReadAt(p, off)
}
