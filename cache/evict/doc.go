// Package evict is the eviction policy of Gotthard's cache stores: a weighted key-value
// cache, bounded by total weight, that evicts with S3-FIFO and admits with TinyLFU (the
// design of Pingora's TinyUFO).
//
// # The policy
//
// Entries live in two FIFO queues. A new key enters the small queue (a tenth of the
// capacity); each read raises a 2-bit counter on its entry. When the small queue is over
// its share, its oldest entry moves to the main queue if it was read while there, and is
// evicted otherwise, its key's hash kept in a ghost queue. A key that returns while in the
// ghost queue enters the main queue directly. The main queue's oldest entry is evicted if
// its counter is zero; otherwise the counter drops by one and the entry goes round again.
// One-off keys (a crawl, a scan) thus pass through the small queue without disturbing
// the main one.
//
// Before a new key may displace the entry the queues would evict next, TinyLFU compares
// how often each was asked for: a count-min sketch of 4-bit counters, halved every
// ten samples per counter word, estimates both, and the newcomer is refused unless its
// estimate is higher. Every hit and every Set counts in the sketch.
//
// # Costs
//
// [Cache.Get] takes no lock and allocates nothing: it probes an open-addressing hash
// table of atomic pointers and hashes (replaced whole, and atomically, when a writer
// resizes it),
// compares the key whole, and raises the entry's counter and the sketch's counters with
// compare-and-swap, skipping counters that are already at their cap, so the hottest keys
// cost their readers no writes to shared memory. [Cache.Set] and [Cache.Remove] take one
// mutex. Beyond its entries the cache keeps about 32 bytes of sketch per entry, a ghost
// queue of at most as many hashes as entries, and a table of two to four 16-byte slots
// (pointer and hash) per entry.
//
// # When not to use it
//
// It has no expiry and no loading: the cache stores above it decide freshness. For a
// cache of a few entries a map and a mutex are simpler.
//
// # Example
//
//	c, err := evict.New(evict.Options[string, []byte]{
//		Capacity: 64 << 20,
//		OnEvict:  func(key string, body []byte, cause evict.Cause) { /* release */ },
//	})
//	if err != nil { ... }
//	c.Set("/a", body, int64(len(body)))
//	if b, ok := c.Get("/a"); ok { ... }
package evict
