package limit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOptions: bad options are refused when built, with an error naming the field once.
func TestOptions(t *testing.T) {
	tests := []struct {
		name  string
		build func() error
		field string // "" when the options are good
	}{
		{"rate zero", func() error { _, err := NewRate(RateOptions{}); return err }, ""},
		{"rate window", func() error { _, err := NewRate(RateOptions{Window: time.Microsecond}); return err }, "RateOptions.Window"},
		{"rate width", func() error { _, err := NewRate(RateOptions{Width: -1}); return err }, "RateOptions.Width"},
		{"rate width big", func() error { _, err := NewRate(RateOptions{Width: 1<<24 + 1}); return err }, "RateOptions.Width"},
		{"rate depth", func() error { _, err := NewRate(RateOptions{Depth: 17}); return err }, "RateOptions.Depth"},
		{"bucket good", func() error { _, err := NewTokenBucket(TokenBucketOptions{Rate: 0.5}); return err }, ""},
		{"bucket rate", func() error { _, err := NewTokenBucket(TokenBucketOptions{}); return err }, "TokenBucketOptions.Rate"},
		{"bucket rate NaN", func() error { _, err := NewTokenBucket(TokenBucketOptions{Rate: nan()}); return err }, "TokenBucketOptions.Rate"},
		{"bucket burst", func() error { _, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: -2}); return err }, "TokenBucketOptions.Burst"},
		{"bucket keys", func() error { _, err := NewTokenBucket(TokenBucketOptions{Rate: 1, MaxKeys: -1}); return err }, "TokenBucketOptions.MaxKeys"},
		{"bucket keys big", func() error { _, err := NewTokenBucket(TokenBucketOptions{Rate: 1, MaxKeys: 1<<26 + 1}); return err }, "TokenBucketOptions.MaxKeys"},
		{"inflight keys big", func() error { _, err := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: 1 << 30}); return err }, ""},
		{"inflight good", func() error { _, err := NewInFlight(InFlightOptions{Limit: 1}); return err }, ""},
		{"inflight limit", func() error { _, err := NewInFlight(InFlightOptions{}); return err }, "InFlightOptions.Limit"},
		{"inflight keys", func() error { _, err := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: -5}); return err }, "InFlightOptions.MaxKeys"},
		{"inflight retry", func() error { _, err := NewInFlight(InFlightOptions{Limit: 1, RetryAfter: -1}); return err }, "InFlightOptions.RetryAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("good options refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("bad options accepted")
			}
			if !errors.Is(err, ErrOption) || strings.Count(err.Error(), tt.field) != 1 {
				t.Fatalf("error %q: want ErrOption naming %s once", err, tt.field)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }
