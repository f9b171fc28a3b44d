package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Defaults of [Options].
const (
	DefaultName           = "gotthard"
	DefaultLockTimeout    = 10 * time.Second
	DefaultMaxObjectBytes = 16 << 20
)

// Options configure a [Cache].
type Options struct {
	// Storage keeps the objects. Required.
	Storage Storage
	// Name names the cache in Cache-Status fields (RFC 9211). Default: DefaultName.
	Name string
	// LockTimeout bounds a request's wait for the head of a response that another
	// request is fetching for the same key (the cache lock, against stampedes): past it
	// the request goes upstream itself, and its response is not stored. Default:
	// DefaultLockTimeout; negative: no lock, every miss goes upstream.
	LockTimeout time.Duration
	// MaxObjectBytes is the size of the largest body stored; a larger response passes
	// through uncached. Default: DefaultMaxObjectBytes.
	MaxObjectBytes int64
	// CacheStatus adds a Cache-Status field (RFC 9211) to every response the cache took
	// part in.
	CacheStatus bool
	// Policy holds the choices RFC 9111 leaves to a cache (heuristic freshness, ranges).
	// Its Surrogate token defaults to Name: the cache follows the Surrogate-Control
	// directives addressed to it (see [Policy.Storable]), unless IgnoreSurrogateControl.
	Policy Policy
	// IgnoreSurrogateControl makes the cache no surrogate: Surrogate-Control is neither
	// read nor removed, and no Surrogate-Capability is sent.
	IgnoreSurrogateControl bool
}

// Cache is an HTTP cache: a [Storage], the lock that makes concurrent misses for one key
// a single upstream request, and the fills that requests waiting on that lock read while
// they grow. A proxy service uses it from its cache phases; a program may also look up
// and purge keys with it directly. It is safe for concurrent use.
type Cache struct {
	store       Storage
	name        string
	lockTimeout time.Duration
	maxObject   int64
	cacheStatus bool
	policy      Policy

	mu    sync.Mutex
	fills map[string]*Fill // the fills in progress, by key; bounded by the requests in flight
}

// New returns a Cache over opts.Storage. It fails, naming the option, if an option is
// not valid.
func New(opts Options) (*Cache, error) {
	if opts.Storage == nil {
		return nil, errors.New("cache: Options.Storage is required")
	}
	if opts.MaxObjectBytes < 0 {
		return nil, fmt.Errorf("cache: Options.MaxObjectBytes %d is negative", opts.MaxObjectBytes)
	}
	if strings.ContainsAny(opts.Name, " \t\r\n,;=\"") {
		return nil, fmt.Errorf("cache: Options.Name %q is not a token", opts.Name)
	}
	c := &Cache{
		store: opts.Storage, name: opts.Name, lockTimeout: opts.LockTimeout,
		maxObject: opts.MaxObjectBytes, cacheStatus: opts.CacheStatus, policy: opts.Policy,
		fills: make(map[string]*Fill),
	}
	if c.name == "" {
		c.name = DefaultName
	}
	if opts.IgnoreSurrogateControl {
		c.policy.Surrogate = ""
	} else if c.policy.Surrogate == "" {
		c.policy.Surrogate = c.name
	}
	if c.lockTimeout == 0 {
		c.lockTimeout = DefaultLockTimeout
	}
	if c.maxObject == 0 {
		c.maxObject = DefaultMaxObjectBytes
	}
	return c, nil
}

// Policy returns the cache's choices where RFC 9111 leaves some.
func (c *Cache) Policy() Policy { return c.policy }

// Name returns the cache's name, as Cache-Status fields give it.
func (c *Cache) Name() string { return c.name }

// Storage returns the cache's store.
func (c *Cache) Storage() Storage { return c.store }

// CacheStatus reports whether responses get a Cache-Status field.
func (c *Cache) CacheStatus() bool { return c.cacheStatus }

// LockTimeout returns how long a request waits for another's fill of its key (negative:
// it does not wait).
func (c *Cache) LockTimeout() time.Duration { return c.lockTimeout }

// MaxObjectBytes returns the size of the largest body the cache stores.
func (c *Cache) MaxObjectBytes() int64 { return c.maxObject }

// A response that varies (RFC 9111 §4.1) is stored under its variant's key, and its
// primary key holds a marker: a Meta with status 0 whose header lists the Vary field
// names and a generation. Variant keys include the generation, so that purging the
// primary key (which removes the marker) orphans every variant at once; orphans are
// never found again and go with eviction.
const (
	markerVary = "Vary"
	markerGen  = "Gotthard-Variants"
)

// IsVaryMarker reports whether m is the marker of a varying response rather than a
// response.
func IsVaryMarker(m *Meta) bool { return m.Response.Status == 0 }

// VariantKey returns the key under which the variant of variance is stored, for the
// marker m found under primary.
func VariantKey(primary string, m *Meta, variance string) string {
	return primary + "\x00" + m.Response.Header.Get(markerGen) + "\x00" + variance
}

// newMarker returns the marker for responses varying on vary, reusing the generation
// of old if it varies on the same fields.
func newMarker(vary string, old *Meta) *Meta {
	m := &Meta{Size: 0}
	gen := ""
	if old != nil && IsVaryMarker(old) && old.Response.Header.Get(markerVary) == vary {
		gen = old.Response.Header.Get(markerGen)
	}
	if gen == "" {
		var b [8]byte
		rand.Read(b[:])
		gen = hex.EncodeToString(b[:])
	}
	m.Response.Header.Add(markerVary, vary)
	m.Response.Header.Add(markerGen, gen)
	return m
}

// Lookup returns the object stored under primary and its key in the store. For a
// response that varies, it follows the marker stored under primary to the variant of
// the request: variance returns the request's variance key for the stored head it is
// given (whose Vary lists the fields), or false if no request matches it. It returns an
// error wrapping ErrNotFound when nothing matches.
func (c *Cache) Lookup(primary string, variance func(stored *message.ResponseHeader) (string, bool)) (Object, string, error) {
	obj, err := c.store.Lookup(primary)
	if err != nil {
		return nil, "", err
	}
	m := obj.Meta()
	if !IsVaryMarker(m) {
		return obj, primary, nil
	}
	key := ""
	if v, ok := variance(&m.Response); ok {
		key = VariantKey(primary, m, v)
	}
	obj.Close()
	if key == "" {
		return nil, "", fmt.Errorf("%w: no variant of %q can match the request", ErrNotFound, primary)
	}
	obj, err = c.store.Lookup(key)
	if err != nil {
		return nil, "", err
	}
	return obj, key, nil
}

// DefaultKey is the primary cache key of a method request to scheme://host target, as
// the proxy's default CacheKey phase makes it: the method's class (GET and HEAD share
// "GET", so a stored GET response answers HEAD; any other method is its own class, so a
// program that stores POST responses never serves them for GET), the scheme, the host
// lowercased (RFC 9110 §4.2.3), and the target as sent, path and query:
// "GET http://example.com/a?b".
func DefaultKey(method, scheme, host, target string) string {
	if method == "HEAD" {
		method = "GET"
	}
	return method + " " + scheme + "://" + strings.ToLower(host) + target
}

// Purge removes what is stored under primary: the response, or the marker of its
// variants (and with it every variant). It reports whether there was anything.
func (c *Cache) Purge(primary string) (bool, error) {
	return c.store.Purge(primary)
}

// storeKey returns the key a response with the head meta is stored under, writing or
// renewing the vary marker under primary if the response varies on vary ("" if it
// does not).
func (c *Cache) storeKey(primary, vary, variance string) (string, error) {
	if vary == "" {
		return primary, nil
	}
	var old *Meta
	if obj, err := c.store.Lookup(primary); err == nil {
		old = obj.Meta().Clone()
		obj.Close()
	}
	m := newMarker(vary, old)
	if old == nil || !IsVaryMarker(old) || old.Response.Header.Get(markerGen) != m.Response.Header.Get(markerGen) {
		w, err := c.store.Create(primary, m)
		if err != nil {
			return "", fmt.Errorf("cache: storing the vary marker of %q: %w", primary, err)
		}
		if err := w.Commit(); err != nil {
			return "", fmt.Errorf("cache: storing the vary marker of %q: %w", primary, err)
		}
	}
	return VariantKey(primary, m, variance), nil
}
