// Package deflate is a gzip writer (RFC 1952 around RFC 1951's deflate) that runs
// zlib's lazy matching with zlib's parameters for levels 4 to 9: the algorithm and
// the limits (good, lazy, nice, chain) that nginx's gzip_comp_level and `gzip -N`
// name, so that a level here codes text about as small as zlib's does at that level.
//
// The matcher hashes four bytes (zlib hashes three) and compares a candidate eight
// bytes at a time; blocks are coded with Huffman codes of optimal length under the
// format's limits (package-merge), and each is sent stored, with the fixed codes or
// with its own, whichever is smallest.
//
// A [Writer] holds a 64 KiB window, a 128 KiB hash table, 64 KiB of chain links (16-bit
// distances) and a block of 16,384 tokens (64 KiB): about 340 KiB, allocated once and
// reused across [Writer.Reset]s, which clear nothing (the positions the table holds of
// an earlier stream are out of the next one's window).
//
// A Writer is not safe for concurrent use.
package deflate
