package proxy

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestFresh checks that fresh, the quick test, agrees with stale on the deadline wanted
// for every deadline around now: before, at and after now+timeout, near the edge of
// the twentieth, unset, and far away.
func TestFresh(t *testing.T) {
	base := time.Now() // with a monotonic reading, as the times the proxy passes
	r := rand.New(rand.NewPCG(3, 4))
	timeouts := []time.Duration{time.Millisecond, time.Second, 60 * time.Second, 1<<62 - 1}
	for range 100000 {
		timeout := timeouts[r.IntN(len(timeouts))]
		now := base.Add(time.Duration(r.Int64N(int64(time.Hour))))
		var cur time.Time
		switch r.IntN(6) {
		case 0: // unset
		case 1: // far in the past
			cur = time.Unix(1, 0)
		case 2: // at the edge of the twentieth, either side
			cur = now.Add(timeout - timeout/20 + time.Duration(r.IntN(3)-1))
		case 3: // at now+timeout, either side
			cur = now.Add(timeout + time.Duration(r.IntN(3)-1))
		default:
			cur = now.Add(time.Duration(r.Int64N(int64(2*time.Minute))) - time.Minute)
		}
		isStale := stale(cur, want(now, timeout, time.Time{}), timeout)
		if got := fresh(cur, now, timeout); got == isStale {
			t.Fatalf("fresh(cur %v, now %v, timeout %v) = %v, stale says %v", cur, now, timeout, got, isStale)
		}
	}
}
