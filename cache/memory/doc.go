// Package memory is a [cache.Storage] kept in the heap and bounded in bytes: the cache's
// store for hot objects, or its only store when nothing need survive a restart.
//
// A [Store] accounts each object at what it costs the heap: its body (the allocation,
// not only its length), its head (deep-copied into one allocation, plus the field
// slice), its key, and a fixed overhead for the object, its Meta and its share of the
// eviction policy's bookkeeping (424 bytes). Objects are evicted by
// cache/evict (S3-FIFO with TinyLFU admission) to keep the total within
// Options.MaxBytes, so a store's heap stays close to that bound whatever the objects'
// sizes.
//
// Lookup takes no lock and allocates nothing: it returns the stored object itself, a
// [cache.BytesObject] whose body is read with Bytes without a copy. Objects are
// immutable; a new response or a new head (UpdateMeta, after a 304) replaces the object,
// and readers holding the old one keep reading it.
//
// A write buffers the whole body in memory (up to Options.MaxObjectBytes) and makes it
// visible only at Commit.
//
//	s, err := memory.New(memory.Options{MaxBytes: 256 << 20, MaxObjectBytes: 8 << 20})
//	if err != nil { ... }
//	w, err := s.Create(key, meta)
//	if err != nil { ... }
//	if _, err := w.Write(body); err != nil { ... } // errors.Is(err, cache.ErrTooLarge)
//	if err := w.Commit(); err != nil { ... }
//	o, err := s.Lookup(key)
//	if err == nil {
//		defer o.Close()
//		body := o.(cache.BytesObject).Bytes()
//	}
//
// Do not use it for bodies larger than the heap can spare: cache/disk keeps objects in
// files.
package memory
