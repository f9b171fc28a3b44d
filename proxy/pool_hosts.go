package proxy

import (
	"crypto/tls"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The pool keeps one hostPool per peer identity (poolKey): its idle HTTP/1.x
// connections, the TLS configuration whose session cache resumes its handshakes, and
// its HTTP/2 transports. Entries come and go with the peers: a forward proxy, or
// backends whose addresses churn, meet ever new keys.
//
// Requests find an entry in an immutable snapshot of the table read through an atomic
// pointer, without a lock. The table itself is a map under the pool's lock; a new key
// goes into it at once and into the snapshot later, when the keys missing from the
// snapshot are as many as those in it (so rebuilding the snapshot costs O(1) per key
// added), or at the next sweep, about a second later. Until then a lookup that misses
// the snapshot takes the lock.
//
// An entry with no connection open (idle or in use) and no request for
// hostPruneIdleTimes of its peer's idle timeout is removed by the sweep; past
// ServiceOptions.MaxUpstreamPeers entries, the least recently used entries with no
// connection open are removed when a key is added. An HTTP/2 request keeps its
// transport's connection even if the entry goes meanwhile: that transport closes it
// once idle for its IdleConnTimeout.

// hostPruneIdleTimes is how many of its peer's idle timeouts an empty entry is kept
// after its last request.
const hostPruneIdleTimes = 3

// maxH2Transports bounds the HTTP/2 transports of one peer identity (one per set of
// the options a transport is built with); past it, the least recently used one goes.
const maxH2Transports = 8

// hostPool holds what the pool keeps for one peer identity.
type hostPool struct {
	key     poolKey
	removed atomic.Bool // set (under the pool's lock and mu) once it left the table

	mu        sync.Mutex
	idle      []*upConn     // a LIFO stack: the newest on top
	conns     int           // HTTP/1.x connections open, idle or in use
	used      time.Time     // the last request for the peer
	keepFor   time.Duration // how long the entry is kept once empty and unused
	tlsConfig *tls.Config   // the client configuration of a TLS peer, made once
	h2        h2Pool        // HTTP/2 transports (see upstream_h2.go)
}

// touch records a request for the peer at now, with o its options; call with mu held.
func (h *hostPool) touch(now time.Time, o *PeerOptions) {
	if now.After(h.used) {
		h.used = now
	}
	h.keepFor = keepFor(o)
}

// keepFor is how long the entry of a peer with options o is kept once it has no
// connection open: hostPruneIdleTimes of its idle timeout, or of the default one when
// its connections are not kept.
func keepFor(o *PeerOptions) time.Duration {
	if o.IdleTimeout < 0 {
		return hostPruneIdleTimes * (&PeerOptions{}).idleTimeout()
	}
	return hostPruneIdleTimes * o.idleTimeout()
}

// prunable reports whether h can be removed at now: it holds no connection and has not
// been used for keepFor (or, with lru, whatever its last use); call with mu held.
func (h *hostPool) prunable(now time.Time, lru bool) bool {
	return h.conns == 0 && len(h.idle) == 0 && (lru || now.Sub(h.used) >= h.keepFor)
}

// hostTable is the pool's table of hostPools.
type hostTable struct {
	max int // the number of entries past which empty ones are evicted

	mu      sync.Mutex // guards all, missing and evictAt; taken before a hostPool's mu
	all     map[poolKey]*hostPool
	missing int // entries of all not in the snapshot
	evictAt int // the size of all at which to look for entries to evict again
	snap    atomic.Pointer[map[poolKey]*hostPool]
}

func (t *hostTable) init(maxHosts int) {
	t.max = maxHosts
	t.all = map[poolKey]*hostPool{}
	m := map[poolKey]*hostPool{}
	t.snap.Store(&m)
}

// lookup returns the entry of key k, or nil if there is none.
func (p *connPool) lookup(k poolKey) *hostPool {
	if h := (*p.hosts.snap.Load())[k]; h != nil && !h.removed.Load() {
		return h
	}
	p.hosts.mu.Lock()
	h := p.hosts.all[k]
	p.hosts.mu.Unlock()
	return h
}

// host returns the entry of key k, adding it if need be, and records a request for its
// peer at now, with o its options. The entry may be removed right after: callers that
// need it to stay use acquire.
func (p *connPool) host(k poolKey, now time.Time, o *PeerOptions) *hostPool {
	h := p.entry(k, now)
	h.mu.Lock()
	h.touch(now, o)
	h.mu.Unlock()
	return h
}

// entry returns the entry of key k, adding it (as used at now) if need be.
func (p *connPool) entry(k poolKey, now time.Time) *hostPool {
	if h := p.lookup(k); h != nil {
		return h
	}
	var closing []h2RoundTripper
	t := &p.hosts
	t.mu.Lock()
	h := t.all[k]
	if h == nil {
		h = &hostPool{key: k, used: now, keepFor: keepFor(&PeerOptions{})}
		t.all[k] = h
		t.missing++
		if len(t.all) > t.max && len(t.all) >= t.evictAt {
			closing = t.evict(h)
			t.evictAt = len(t.all) + max(t.max/16, 1)
		} else if t.missing >= max(len(t.all)-t.missing, 16) {
			t.publish()
		}
	}
	t.mu.Unlock()
	for _, tr := range closing {
		tr.CloseIdleConnections()
	}
	return h
}

// acquire returns the entry of key k with one more connection counted open in it,
// which keeps it in the table until that connection closes.
func (p *connPool) acquire(k poolKey, now time.Time, o *PeerOptions) *hostPool {
	for {
		h := p.host(k, now, o)
		h.mu.Lock()
		if !h.removed.Load() {
			h.conns++
			h.mu.Unlock()
			return h
		}
		h.mu.Unlock() // removed meanwhile: the next host call adds a new entry
	}
}

// publish makes the snapshot the table; call with mu held.
func (t *hostTable) publish() {
	m := make(map[poolKey]*hostPool, len(t.all))
	for k, h := range t.all {
		m[k] = h
	}
	t.snap.Store(&m)
	t.missing = 0
}

// remove takes h out of the table; call with the table's mu and h.mu held. It returns
// what the caller closes once it has released the locks.
func (t *hostTable) remove(h *hostPool, closing []h2RoundTripper) []h2RoundTripper {
	h.removed.Store(true)
	delete(t.all, h.key)
	for _, e := range h.h2.transports {
		closing = append(closing, e.tr)
	}
	h.h2.transports = nil
	h.tlsConfig = nil
	return closing
}

// evict removes the least recently used entries with no connection open, other than
// keep, until the table holds a sixteenth fewer than its maximum; call with mu held. It
// returns the HTTP/2 transports of the entries removed, whose idle connections the
// caller closes once it has released the lock.
func (t *hostTable) evict(keep *hostPool) []h2RoundTripper {
	type cand struct {
		h    *hostPool
		used time.Time
	}
	var cands []cand
	for _, h := range t.all {
		if h == keep {
			continue
		}
		h.mu.Lock()
		if h.prunable(time.Time{}, true) {
			cands = append(cands, cand{h, h.used})
		}
		h.mu.Unlock()
	}
	slices.SortFunc(cands, func(a, b cand) int { return a.used.Compare(b.used) })
	target := t.max - t.max/16
	var closing []h2RoundTripper
	for _, c := range cands {
		if len(t.all) <= target {
			break
		}
		c.h.mu.Lock()
		if c.h.prunable(time.Time{}, true) {
			closing = t.remove(c.h, closing)
		}
		c.h.mu.Unlock()
	}
	t.publish()
	return closing
}
