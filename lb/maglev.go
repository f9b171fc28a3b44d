package lb

import (
	"time"
	"unsafe"
)

// maglevSize is the size of the Maglev lookup table: a prime well above 100 times the
// usual number of backends, as the Maglev paper advises.
const maglevSize = 65537

// maglevPicker is Maglev consistent hashing (Eisenbud et al., NSDI 2016): each backend
// fills the table's free entries in the order of its own permutation (offset + j×skip
// mod size), taking turns in proportion to weight, until the table is full. A key's
// entry is its hash modulo the size.
type maglevPicker[T any] struct {
	table []uint16
}

func newMaglevPicker[T any](ts []*Target[T], size int) *maglevPicker[T] {
	m := uint64(size)
	offset := make([]uint64, len(ts))
	skip := make([]uint64, len(ts))
	next := make([]uint64, len(ts))
	for i, t := range ts {
		offset[i] = mix64(fnv64a(t.backend.Addr, fnvOffset)) % m
		skip[i] = mix64(fnv64a(t.backend.Addr, fnvOffset2))%(m-1) + 1
	}
	table := make([]uint16, size)
	filled := make([]bool, size)
	n := 0
	for n < size {
		for i, t := range ts {
			for range t.weight {
				c := (offset[i] + next[i]*skip[i]) % m
				for filled[c] {
					next[i]++
					c = (offset[i] + next[i]*skip[i]) % m
				}
				table[c], filled[c] = uint16(i), true
				next[i]++
				if n++; n == size {
					return &maglevPicker[T]{table: table}
				}
			}
		}
	}
	return &maglevPicker[T]{table: table}
}

func (p *maglevPicker[T]) pick(s *snapshot[T], key string, a *Attempts[T], _ time.Duration) *Target[T] {
	m := uint64(len(p.table))
	i := mix64(fnv64a(key, fnvOffset)) % m
	// Neighbouring entries belong to backends in no particular order, so walking on
	// spreads an unavailable backend's keys over the others.
	for range maxWalk * 4 {
		if t := s.targets[p.table[i]]; usable(t, a) {
			return t
		}
		if i++; i == m {
			i = 0
		}
	}
	return scan(s, a)
}

const (
	fnvOffset  = 14695981039346656037
	fnvOffset2 = 0x9e3779b97f4a7c15 // a second, independent starting point
	fnvPrime   = 1099511628211
)

// fnv64a is FNV-1a over s from the given starting value.
func fnv64a(s string, h uint64) uint64 {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// mix64 is the finaliser of MurmurHash3: it spreads FNV's weak low bits.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
