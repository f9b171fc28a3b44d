package memory

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/evict"
)

// ErrOptions is wrapped by the error [New] returns for invalid [Options].
var ErrOptions = errors.New("memory: invalid options")

// errDone is returned by a Writer used after Commit or Abort.
var errDone = errors.New("memory: write already committed or aborted")

// Options configure a [Store].
type Options struct {
	// MaxBytes bounds the heap the stored objects take: bodies, heads, keys and each
	// object's fixed bookkeeping. It must be positive. Writes still open are not counted;
	// each holds at most MaxObjectBytes of body.
	MaxBytes int64
	// MaxObjectBytes bounds one object's body. If zero, it is MaxBytes/8. It must not be
	// negative or above MaxBytes.
	MaxObjectBytes int64
}

// Stats are a [Store]'s counters.
type Stats struct {
	// Objects is the number of objects stored.
	Objects int
	// Bytes is their accounted size, at most Options.MaxBytes.
	Bytes int64
	// Hits and Misses count lookups that found an object and lookups that did not.
	Hits, Misses int64
	// Evictions counts objects evicted to make room.
	Evictions int64
	// Rejections counts commits the admission policy declined, because the object
	// displaced would have been one asked for more often.
	Rejections int64
}

// Store is a [cache.Storage] that keeps objects in the heap, bounded in bytes, and
// evicts with cache/evict. It is safe for concurrent use: Lookup takes no lock and
// allocates nothing; the writes (Commit, UpdateMeta, Purge) are serialised.
type Store struct {
	maxObject int64
	objects   *evict.Cache[string, *object]

	// wmu serialises the writes, so that UpdateMeta's read-copy-write of an object is
	// not interleaved with a Commit or a Purge of its key.
	wmu sync.Mutex

	hits, misses, evictions, rejections atomic.Int64
}

var _ cache.Storage = (*Store)(nil)

// New returns an empty store. The error, which wraps [ErrOptions], names the invalid
// option.
func New(o Options) (*Store, error) {
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("%w: MaxBytes %d is not positive", ErrOptions, o.MaxBytes)
	}
	if o.MaxObjectBytes < 0 || o.MaxObjectBytes > o.MaxBytes {
		return nil, fmt.Errorf("%w: MaxObjectBytes %d is not within 0 to MaxBytes (%d)", ErrOptions, o.MaxObjectBytes, o.MaxBytes)
	}
	if o.MaxObjectBytes == 0 {
		o.MaxObjectBytes = o.MaxBytes / 8
	}
	s := &Store{maxObject: o.MaxObjectBytes}
	c, err := evict.New(evict.Options[string, *object]{
		Capacity: o.MaxBytes,
		OnEvict: func(_ string, _ *object, cause evict.Cause) {
			if cause == evict.Evicted {
				s.evictions.Add(1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	s.objects = c
	return s, nil
}

// Lookup returns the object committed under key, which is a [cache.BytesObject], or
// [cache.ErrNotFound]. It takes no lock and allocates nothing.
func (s *Store) Lookup(key string) (cache.Object, error) {
	o, ok := s.objects.Get(key)
	if !ok {
		s.misses.Add(1)
		return nil, cache.ErrNotFound
	}
	s.hits.Add(1)
	return o, nil
}

// Create opens a write of an object under key. The store keeps a deep copy of meta.
// It returns an error wrapping [cache.ErrTooLarge] if meta.Size announces a body over
// MaxObjectBytes. A Writer is not safe for concurrent use.
//
// Commit stores the object, replacing any under key, unless the admission policy
// declines it (a new key may not displace an object asked for more often; see
// cache/evict): then Commit still returns nil, Lookup does not find the object, and
// Stats counts a rejection. An object heavier than MaxBytes in all is declined too.
func (s *Store) Create(key string, meta *cache.Meta) (cache.Writer, error) {
	if meta.Size > s.maxObject {
		return nil, fmt.Errorf("memory: %q: announced body of %d bytes is over %d: %w", key, meta.Size, s.maxObject, cache.ErrTooLarge)
	}
	m, headBytes := compactMeta(meta)
	w := &writer{s: s, key: strings.Clone(key), meta: m, headBytes: headBytes}
	if meta.Size > 0 {
		// Room for the announced body, rounded up as the allocator rounds it.
		w.body = append([]byte(nil), make([]byte, meta.Size)...)[:0]
	}
	return w, nil
}

// UpdateMeta replaces the head of the object under key, keeping its body: the store
// keeps a deep copy of meta, with Size set to the body's length. Objects already
// returned by Lookup keep the head they had. It returns an error wrapping
// [cache.ErrNotFound] if no object is stored under key.
func (s *Store) UpdateMeta(key string, meta *cache.Meta) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, ok := s.objects.Get(key)
	if !ok {
		return fmt.Errorf("memory: update %q: %w", key, cache.ErrNotFound)
	}
	m, headBytes := compactMeta(meta)
	m.Size = int64(len(old.body))
	key = strings.Clone(key) // the new entry keeps it
	o := &object{meta: m, body: old.body, weight: weigh(key, m, headBytes, old.body)}
	if !s.objects.Set(key, o, o.weight) {
		s.rejections.Add(1)
	}
	return nil
}

// Purge removes the object under key and reports whether there was one. Objects
// already returned by Lookup stay readable.
func (s *Store) Purge(key string) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.objects.Remove(key), nil
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Objects:    s.objects.Len(),
		Bytes:      s.objects.Weight(),
		Hits:       s.hits.Load(),
		Misses:     s.misses.Load(),
		Evictions:  s.evictions.Load(),
		Rejections: s.rejections.Load(),
	}
}

// commit stores o under key.
func (s *Store) commit(key string, o *object) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.objects.Set(key, o, o.weight) {
		s.rejections.Add(1)
	}
}

// writer buffers one object's body until Commit.
type writer struct {
	s         *Store
	key       string
	meta      *cache.Meta
	headBytes int64
	body      []byte
	done      bool
}

// Write appends p to the body. Past MaxObjectBytes it aborts the write and returns an
// error wrapping cache.ErrTooLarge.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errDone
	}
	if int64(len(w.body))+int64(len(p)) > w.s.maxObject {
		w.Abort()
		return 0, fmt.Errorf("memory: %q: body over %d bytes: %w", w.key, w.s.maxObject, cache.ErrTooLarge)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Commit stores the object (see Store.Create for when the store declines it).
func (w *writer) Commit() error {
	if w.done {
		return errDone
	}
	w.done = true
	body := w.body
	if c, n := cap(body), len(body); c-n > n/16 {
		// Growth left spare room: keep an allocation of the body's size instead.
		body = append([]byte(nil), body...)
	}
	w.meta.Size = int64(len(body))
	o := &object{meta: w.meta, body: body}
	o.weight = weigh(w.key, w.meta, w.headBytes, body)
	w.body, w.meta = nil, nil
	w.s.commit(w.key, o)
	return nil
}

// Abort discards the write.
func (w *writer) Abort() {
	w.done = true
	w.body, w.meta = nil, nil
}
