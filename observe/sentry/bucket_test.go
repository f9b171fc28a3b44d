package sentry

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	const sec = int64(time.Second)
	tests := []struct {
		name  string
		rate  float64
		burst int
		at    []int64 // times of the events, in nanoseconds
		want  string  // one letter each: y admitted, n refused
	}{
		{name: "burst at once", rate: 1, burst: 3, at: []int64{0, 0, 0, 0, 0}, want: "yyynn"},
		{name: "burst of one", rate: 1, burst: 1, at: []int64{0, 0, sec - 1, sec, sec}, want: "ynnyn"},
		{name: "steady at the rate", rate: 10, burst: 1, at: []int64{0, sec / 10, 2 * sec / 10, 3 * sec / 10}, want: "yyyy"},
		{name: "refill capped at the burst", rate: 1, burst: 2, at: []int64{0, 0, 0, 10 * sec, 10 * sec, 10 * sec}, want: "yynyyn"},
		{name: "partial refill", rate: 2, burst: 4, at: []int64{0, 0, 0, 0, 0, sec, sec, sec}, want: "yyyynyyn"},
		{name: "tiny rate", rate: 1e-12, burst: 2, at: []int64{0, 0, 0, 1000 * sec}, want: "yynn"},
		{name: "huge rate", rate: 1e12, burst: 1, at: []int64{0, 0, 1, 2}, want: "ynyy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket(tt.rate, tt.burst, 0)
			got := make([]byte, len(tt.at))
			for i, at := range tt.at {
				got[i] = 'n'
				if b.allow(at) {
					got[i] = 'y'
				}
			}
			if string(got) != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestBucketConcurrent(t *testing.T) {
	b := newBucket(1, 100, 0)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if b.allow(0) {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n.Load() != 100 {
		t.Errorf("%d admitted; want the burst, 100", n.Load())
	}
}
