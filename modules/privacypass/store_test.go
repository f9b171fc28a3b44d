package privacypass

import (
	"testing"
)

func nonce(i int) *[NonceSize]byte {
	var n [NonceSize]byte
	n[0], n[1], n[2], n[31] = byte(i), byte(i>>8), byte(i>>16), 0xa5
	return &n
}

func TestStoreReplayAndRotation(t *testing.T) {
	s := newNonceStore(100)
	if got := s.record(nonce(1), 10); got != stored {
		t.Fatalf("first record: %v", got)
	}
	if got := s.record(nonce(1), 10); got != replay {
		t.Fatalf("same window again: %v, want replay", got)
	}
	// Windows are separate: a nonce of window 11 is not one of window 10.
	if got := s.record(nonce(1), 11); got != stored {
		t.Fatalf("next window: %v", got)
	}
	if got := s.record(nonce(1), 10); got != replay {
		t.Fatalf("window 10 forgotten too early: %v", got)
	}
	// Window 12 takes over window 10's generation.
	if got := s.record(nonce(2), 12); got != stored {
		t.Fatalf("window 12: %v", got)
	}
	if got := s.record(nonce(1), 10); got != stale {
		t.Fatalf("window 10 after 12: %v, want stale", got)
	}
	if got := s.record(nonce(1), 11); got != replay {
		t.Fatalf("window 11 after 12: %v, want replay", got)
	}
}

func TestStoreZeroNonce(t *testing.T) {
	s := newNonceStore(10)
	var z [NonceSize]byte
	if got := s.record(&z, 1); got != stored {
		t.Fatalf("zero nonce: %v", got)
	}
	if got := s.record(&z, 1); got != replay {
		t.Fatalf("zero nonce again: %v, want replay", got)
	}
}

func TestStoreFull(t *testing.T) {
	for _, perWindow := range []int{10, 5000} {
		s := newNonceStore(perWindow)
		n := 0
		for i := 0; ; i++ {
			r := s.record(nonce(i), 1)
			if r == full {
				break
			}
			if r != stored {
				t.Fatalf("record %d: %v", i, r)
			}
			n++
			if n > 2*perWindow {
				t.Fatalf("store of %d took %d nonces", perWindow, n)
			}
		}
		if n < perWindow/2 {
			t.Errorf("store of %d full after %d nonces", perWindow, n)
		}
		// Nonces already in stay replays, not full.
		if got := s.record(nonce(0), 1); got != replay {
			t.Errorf("record of a stored nonce in a full window: %v", got)
		}
		// The next window has room again.
		if got := s.record(nonce(0), 2); got != stored {
			t.Errorf("next window: %v", got)
		}
		if got, want := s.bytes(), int64(2*len(s.shards)*s.slots*NonceSize); got != want {
			t.Errorf("bytes = %d, want %d", got, want)
		}
	}
}

func TestStoreShardsTakeAtLeastPerWindow(t *testing.T) {
	// With many shards, a full shard ends a window: the keyed hash spreads nonces so
	// that happens near the configured count, not far below it.
	s := newNonceStore(1 << 14)
	if len(s.shards) != storeShards {
		t.Fatalf("%d shards", len(s.shards))
	}
	for i := 0; ; i++ {
		if s.record(nonce(i), 1) == full {
			if i < (1<<14)*8/10 {
				t.Fatalf("full after %d of %d", i, 1<<14)
			}
			return
		}
	}
}

// TestStoreMemory checks the figures the documentation gives.
func TestStoreMemory(t *testing.T) {
	tests := []struct {
		perWindow int
		bytes     int64
	}{
		{DefaultMaxNonces, 8 << 20},
		{MaxNoncesLimit, 2 << 30},
		{1000, 2 * 2048 * NonceSize},
	}
	for _, tt := range tests {
		s := newNonceStore(tt.perWindow)
		if got := s.bytes(); got != tt.bytes {
			t.Errorf("store of %d: %d bytes, want %d", tt.perWindow, got, tt.bytes)
		}
		if per := float64(s.bytes()) / float64(tt.perWindow); per < 85 || per > 171 {
			t.Errorf("store of %d: %.0f bytes per nonce", tt.perWindow, per)
		}
	}
}
