// Package disk is a [cache.Storage] on a directory: bounded in bytes, surviving a
// restart, and never serving a torn object, even after a crash of the process or the
// machine.
//
// Each object is two files in a two-level fan-out of directories named by the hash of
// its key (the first 8 bytes of its SHA-256): a body file, written once under a fresh
// generation number, and a small head file holding the full key, the body's generation,
// length and CRC-32C, and the encoded [cache.Meta]. A write goes to a temporary file;
// Commit fsyncs it, renames it to its body name and fsyncs the directory, then writes a
// new head file the same way (temporary file, fsync, rename over the old head, fsync of
// the directory) and removes the replaced body. The head file's rename is the commit
// point: a reader, or a restart, sees the old object or the new one, never a mixture.
// [Store.UpdateMeta] (after a 304) replaces only the head file, pointing at the same
// body, so it costs one small write whatever the body's size.
//
// [Open] rebuilds the in-memory index by scanning the directory: it removes temporary
// files of interrupted writes, bodies no head names, and objects whose head does not
// decode, whose body's length differs, or (unless [Options].SkipBodyCheck) whose body's
// checksum does not match. Keys are compared whole on every lookup, so two keys whose
// hashes collide never serve each other's objects: the later write replaces the earlier.
//
// The index keeps each object's key and head in memory, so a lookup opens one file and
// a miss opens none. An [cache.Object] from [Store.Lookup] holds its body file open: a
// purge, replacement or eviction unlinks the file, and on Unix the reader keeps reading
// it until Close. The store evicts least recently used objects to stay within
// [Options].MaxBytes, counted over its files' bytes.
//
// Use it where cached objects should outlive the process or exceed memory; for a small,
// hot working set an in-memory store is faster. One Store (in any process) may have a
// directory open at a time; [Open] takes a lock file to enforce it on Unix.
//
//	st, err := disk.Open("/var/cache/gotthard", disk.Options{MaxBytes: 10 << 30})
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	obj, err := st.Lookup(key)
//	if errors.Is(err, cache.ErrNotFound) {
//		// fetch from the origin, then st.Create(key, meta), Write, Commit
//	}
package disk
