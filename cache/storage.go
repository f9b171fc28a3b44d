package cache

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Errors a [Storage] returns. Callers test them with errors.Is.
var (
	// ErrNotFound: no committed object is stored under the key.
	ErrNotFound = errors.New("cache: not found")
	// ErrTooLarge: the object is larger than the store accepts; the write was aborted.
	ErrTooLarge = errors.New("cache: object too large")
)

// Meta is what a store keeps of a response besides its body: the response head and the
// times RFC 9111 §4.2.3 computes the age from.
type Meta struct {
	// Response is the stored status line and header fields, hop-by-hop fields removed.
	Response message.ResponseHeader
	// RequestTime is when the request that produced the response was sent upstream.
	RequestTime time.Time
	// ResponseTime is when the response head was received.
	ResponseTime time.Time
	// Size is the body's length in bytes. It is -1 while a write is open and set by
	// Commit.
	Size int64

	// memo is what the cache's rules derive from Response, computed the first time they
	// need it (see Meta.derived): a stored Meta does not change.
	memo atomic.Pointer[metaMemo]
}

// MetaOverhead is the heap a stored Meta takes besides its head's strings and field
// slice: the Meta itself and what the cache derives from its head the first time it is
// served, each rounded up to the allocator's size class. A store that bounds its
// memory counts it for each object; TestMetaOverhead checks it.
const MetaOverhead = 128 + 192

// metaMemo is what RFC 9111's rules derive from a stored head.
type metaMemo struct {
	cc    CacheControl  // the parsed Cache-Control
	date  time.Time     // Date, or ResponseTime when absent or invalid
	age   time.Duration // the Age field's value (see ageField)
	clean bool          // nothing for stripUnstorable to remove
}

// CacheControl returns the parsed Cache-Control of m's head, parsed once. The caller
// must not change it.
func (m *Meta) CacheControl() *CacheControl { return &m.derived().cc }

// derived returns m's memo, computing it if needed. A Meta whose head a caller
// changes (Update304, FreshenFromHEAD) forgets it.
func (m *Meta) derived() *metaMemo {
	if d := m.memo.Load(); d != nil {
		return d
	}
	d := &metaMemo{cc: ParseCacheControl(&m.Response.Header), date: dateOr(&m.Response.Header, m.ResponseTime),
		age: ageField(&m.Response.Header)}
	d.clean = !needsStrip(&m.Response.Header, &d.cc)
	m.memo.Store(d)
	return d
}

// Clone returns a deep copy of m.
func (m *Meta) Clone() *Meta {
	c := &Meta{RequestTime: m.RequestTime, ResponseTime: m.ResponseTime, Size: m.Size}
	c.Response.CopyFrom(&m.Response)
	return c
}

// Object is a committed, immutable stored response returned by [Storage.Lookup].
// The caller must Close it when done reading; a purge or an eviction never invalidates
// an Object already handed out.
type Object interface {
	// Meta is the stored head. The caller must not change it: use Meta.Clone.
	Meta() *Meta
	// Size is the body's length in bytes.
	Size() int64
	// ReadAt reads the body, as io.ReaderAt does.
	io.ReaderAt
	// Close releases the object (a file, a reference).
	Close() error
}

// BytesObject is implemented by objects whose body is in memory; Bytes returns it
// without a copy, and the caller must not change it.
type BytesObject interface {
	Object
	Bytes() []byte
}

// Writer writes one object into a store. Nothing written is visible to Lookup until
// Commit returns nil. Exactly one of Commit and Abort must be called.
type Writer interface {
	// Write appends body bytes. It returns ErrTooLarge, and aborts the write, once the
	// body passes the store's object size limit.
	io.Writer
	// Commit makes the object visible under its key, replacing any object there. It sets
	// the stored Meta's Size to the number of bytes written.
	Commit() error
	// Abort discards what was written. It is safe to call after a failed Write.
	Abort()
}

// Storage keeps objects by key. Keys are opaque strings made by the cache (the
// proxy's CacheKey phase and the response's variance); a store may hash them but must
// compare them whole. Implementations are safe for concurrent use.
type Storage interface {
	// Lookup returns the object committed under key, or an error wrapping ErrNotFound.
	Lookup(key string) (Object, error)
	// Create opens a write of a new object under key with the given head. The store keeps
	// its own copy of meta. It returns an error wrapping ErrTooLarge when meta announces
	// a size (Size ≥ 0) over the limit.
	Create(key string, meta *Meta) (Writer, error)
	// UpdateMeta replaces the head of the object under key, keeping its body, as a 304
	// does (RFC 9111 §4.3.4). It returns an error wrapping ErrNotFound if none is stored.
	UpdateMeta(key string, meta *Meta) error
	// Purge removes the object under key and reports whether there was one.
	Purge(key string) (bool, error)
}
