package limit

import (
	"strconv"
	"testing"
)

func BenchmarkRateObserve(b *testing.B) {
	r, _ := NewRate(RateOptions{})
	b.ReportAllocs()
	for b.Loop() {
		r.Observe("203.0.113.7", 1)
	}
}

func BenchmarkRateObserveParallel(b *testing.B) {
	r, _ := NewRate(RateOptions{})
	keys := benchKeys(1024)
	b.ReportAllocs()
	b.ResetTimer() // the limiter's table, made whole when it is, is not the checks'
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Observe(keys[i&1023], 1)
			i++
		}
	})
}

func BenchmarkRateRate(b *testing.B) {
	r, _ := NewRate(RateOptions{})
	r.Observe("203.0.113.7", 1)
	b.ReportAllocs()
	for b.Loop() {
		r.Rate("203.0.113.7")
	}
}

func BenchmarkTokenBucketAllow(b *testing.B) {
	tb, _ := NewTokenBucket(TokenBucketOptions{Rate: 1e9, Burst: 1})
	b.ReportAllocs()
	for b.Loop() {
		tb.Allow("203.0.113.7")
	}
}

func BenchmarkTokenBucketAllowParallel(b *testing.B) {
	tb, _ := NewTokenBucket(TokenBucketOptions{Rate: 1e9, Burst: 1})
	keys := benchKeys(1024)
	b.ReportAllocs()
	b.ResetTimer() // the limiter's table, made whole when it is, is not the checks'
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tb.Allow(keys[i&1023])
			i++
		}
	})
}

// BenchmarkTokenBucketChurn: every key new, in a table of 10,000: each Allow evicts.
func BenchmarkTokenBucketChurn(b *testing.B) {
	tb, _ := NewTokenBucket(TokenBucketOptions{Rate: 1, MaxKeys: 10_000})
	key := make([]byte, 0, 16)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		tb.AllowBytes(key)
		i++
	}
}

func BenchmarkInFlightAcquireRelease(b *testing.B) {
	f, _ := NewInFlight(InFlightOptions{Limit: 1 << 20})
	b.ReportAllocs()
	for b.Loop() {
		tok, _ := f.Acquire("203.0.113.7")
		tok.Release()
	}
}

func BenchmarkInFlightParallel(b *testing.B) {
	f, _ := NewInFlight(InFlightOptions{Limit: 1 << 20})
	keys := benchKeys(1024)
	b.ReportAllocs()
	b.ResetTimer() // the limiter's table, made whole when it is, is not the checks'
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tok, _ := f.Acquire(keys[i&1023])
			tok.Release()
			i++
		}
	})
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return keys
}
