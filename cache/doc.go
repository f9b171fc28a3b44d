// Package cache is Gotthard's HTTP cache: a shared cache by RFC 9111 that a proxy service
// turns on per request from its cache phases.
//
// The package has three layers:
//
//   - Policy: the RFC 9111 rules as plain functions over [message.RequestHeader] and
//     [message.ResponseHeader]: whether a response may be stored and for how long, whether
//     a stored response may answer a request fresh, stale or only after validation, how a
//     304 updates it, which requests invalidate which keys, and how a Range request is
//     answered from a stored full response.
//   - Storage: the [Storage] interface (look up, write a miss, update the head after a
//     304, purge) with two implementations in sub-packages: cache/memory (bounded in
//     bytes, in the heap) and cache/disk (bounded in bytes, surviving a restart, never
//     serving a torn object). Both evict with the policy in cache/evict, an S3-FIFO
//     with TinyLFU admission whose reads take no lock.
//   - The proxy's cache phases (proxy.ProxyHTTP's RequestCacheFilter, CacheKey,
//     CacheHitFilter, ResponseCacheFilter, CacheVaryFilter, ShouldServeStale and IsPurge)
//     decide, per request, whether and how this package is used.
//
// A stored response is a [Meta] (its head and the times the RFC's age calculation needs)
// and a body. Objects are immutable once committed: a newer response replaces the whole
// object, and a 304 replaces only its Meta.
package cache
