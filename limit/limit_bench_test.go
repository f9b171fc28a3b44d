package limit

import (
	"context"
	"hash/maphash"
	"math/bits"
	"strconv"
	"testing"
)

// benchMillion is how many distinct keys the BenchmarkLimit benchmarks cycle through:
// a client address each, built before the clock starts so that only the check is
// measured. Run them on one core, as in docs/modules-limits.md:
//
//	go test ./limit -run '^$' -bench '^BenchmarkLimit' -benchmem -cpu 1
const benchMillion = 1 << 20

func millionKeys() []string {
	keys := make([]string, benchMillion)
	for i := range keys {
		keys[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return keys
}

// BenchmarkLimitRate is one check of a [Rate]'s [Limiter] (count, then compare with
// the limit), each under the next of a million keys.
func BenchmarkLimitRate(b *testing.B) {
	r, _ := NewRate(RateOptions{})
	lim := r.Limiter(1e6)
	keys := millionKeys()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		lim.Limit(ctx, keys[i&(benchMillion-1)])
		i++
	}
	reportCPU(b, cpu)
}

// BenchmarkLimitTokenBucket is one [TokenBucket.Allow], each under the next of a
// million keys, which have their state in the table but for a few percent: MaxKeys is
// twice that, and the keys do not spread over the table evenly (a key whose line is
// full takes the place of an idle entry, which loses nothing at this rate).
func BenchmarkLimitTokenBucket(b *testing.B) {
	tb, _ := NewTokenBucket(TokenBucketOptions{Rate: 1e9, Burst: 1, MaxKeys: 2 * benchMillion})
	keys := millionKeys()
	for _, k := range keys {
		tb.Allow(k)
	}
	if n := tb.Len(); n > benchMillion || n < benchMillion*95/100 {
		b.Fatalf("%d keys held", n)
	}
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		tb.Allow(keys[i&(benchMillion-1)])
		i++
	}
	reportCPU(b, cpu)
}

// BenchmarkLimitInFlight is one [InFlight.Acquire] and its release, each under the
// next of a million keys, a thousand of which have a request running throughout.
func BenchmarkLimitInFlight(b *testing.B) {
	f, _ := NewInFlight(InFlightOptions{Limit: 1 << 20, MaxKeys: benchMillion})
	keys := millionKeys()
	for i := 0; i < len(keys); i += 1024 {
		f.Acquire(keys[i])
	}
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		tok, _ := f.Acquire(keys[i&(benchMillion-1)])
		tok.Release()
		i++
	}
	reportCPU(b, cpu)
}

// BenchmarkLimitTokenBucketCached is BenchmarkLimitTokenBucket with 1,024 keys, whose
// slots stay in the cache, and a burst no key reaches: the cost of a check apart from
// the memory's latency.
func BenchmarkLimitTokenBucketCached(b *testing.B) {
	tb, _ := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 1 << 30})
	keys := millionKeys()[:1024]
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		tb.Allow(keys[i&1023])
		i++
	}
	reportCPU(b, cpu)
}

// BenchmarkLimitFloor is the least a check of BenchmarkLimitTokenBucket's keys costs in
// a table of its size, whatever the table's design: hashing the key, then loading the
// one cache line the hash picks from 27 MB of memory (room for 2×2²⁰ keys at 12.8 bytes
// each), with no lock, no comparison and no store, so that nothing keeps the
// processor from overlapping the loads of successive checks.
func BenchmarkLimitFloor(b *testing.B) {
	mem := make([]uint64, 2*benchMillion*64/5/8)
	for i := range mem {
		mem[i] = uint64(i) // every page its own, not the zero page
	}
	lines := uint64(len(mem) / 8)
	seed := maphash.MakeSeed()
	keys := millionKeys()
	var sum uint64
	i := 0
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		j, _ := bits.Mul64(maphash.String(seed, keys[i&(benchMillion-1)]), lines)
		sum += mem[j*8]
		i++
	}
	reportCPU(b, cpu)
	if sum == 1 {
		b.Log(sum)
	}
}

// BenchmarkLimitLatency is the memory's latency under a table of BenchmarkLimitTokenBucket's
// size (27 MB, MaxKeys = 2²¹) and under one of half of it (MaxKeys = 2²⁰): a chase
// through its cache lines in a random cycle, where each load's address is the value
// the one before it read, so that no two overlap. A token bucket's check must have
// its key's line before it decides, and its lock, an atomic instruction, keeps the
// next check's load from starting before: one such wait per check.
func BenchmarkLimitLatency(b *testing.B) {
	for _, keys := range []int{benchMillion, 2 * benchMillion} {
		b.Run(strconv.Itoa(keys*64/5>>20)+"MiB", func(b *testing.B) {
			lines := keys / 5
			mem := make([]uint64, lines*8)
			// Sattolo's shuffle: one cycle through every line.
			next := make([]uint32, lines)
			for i := range next {
				next[i] = uint32(i)
			}
			x := uint64(20261207)
			for i := lines - 1; i > 0; i-- {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				j := int(x % uint64(i))
				next[i], next[j] = next[j], next[i]
			}
			for i, n := range next {
				mem[i*8] = uint64(n) * 8
			}
			p := uint64(0)
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				p = mem[p]
			}
			reportCPU(b, cpu)
			if p == 1 {
				b.Log(p)
			}
		})
	}
}
