package deadline

import (
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	rd, wd time.Time
	sets   int
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.rd = t; c.sets++; return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.wd = t; c.sets++; return nil }

// TestDeadlineBounds checks Tracker.Read and Write against their contract over random
// runs of waits, as the proxy asks for them: time moving on by steps small and large
// (and now and then standing still), timeouts changing, and sometimes a total. After
// each call the deadline on the connection is the tracked one, not after now+timeout
// (nor after total), and not before it by more than a twentieth of the timeout.
func TestDeadlineBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	timeouts := []time.Duration{time.Millisecond, time.Second, 60 * time.Second, 1<<62 - 1}
	for run := range 2000 {
		nc := &deadlineConn{}
		d := New(nc)
		now := time.Now() // with a monotonic reading, as the times the proxy passes
		timeout := timeouts[r.IntN(len(timeouts))]
		for range 50 {
			switch r.IntN(8) {
			case 0:
				timeout = timeouts[r.IntN(len(timeouts))]
			case 1:
				now = now.Add(time.Duration(r.Int64N(int64(2 * time.Minute))))
			case 2: // the same instant again
			default:
				now = now.Add(time.Duration(r.Int64N(int64(timeout/10) + 1)))
			}
			var total time.Time
			if r.IntN(5) == 0 {
				total = now.Add(time.Duration(r.Int64N(int64(2 * time.Minute))))
			}
			w := want(now, timeout, total)
			if r.IntN(2) == 0 {
				d.Read(now, timeout, total)
				checkDeadline(t, run, "read", nc.rd, d.rd.at, w, timeout)
			} else {
				d.Write(now, timeout, total)
				checkDeadline(t, run, "write", nc.wd, d.wd.at, w, timeout)
			}
		}
	}
}

func checkDeadline(t *testing.T, run int, what string, set, tracked, want time.Time, timeout time.Duration) {
	t.Helper()
	if !set.Equal(tracked) {
		t.Fatalf("run %d: %s deadline set %v, tracked %v", run, what, set, tracked)
	}
	if set.After(want) || want.Sub(set) > timeout/20 {
		t.Fatalf("run %d: %s deadline %v for a wait that should end at %v (timeout %v)", run, what, set, want, timeout)
	}
}

// TestDeadlineKept checks that a deadline is not set again while it is within a
// twentieth of its timeout: requests a millisecond apart with a 1 s timeout set it once
// every 50 ms or so, not once a request.
func TestDeadlineKept(t *testing.T) {
	nc := &deadlineConn{}
	d := New(nc)
	now := time.Now()
	for range 1000 {
		d.Read(now, time.Second, time.Time{})
		now = now.Add(time.Millisecond)
	}
	if nc.sets < 15 || nc.sets > 25 {
		t.Fatalf("%d deadlines set over 1 s of waits 1 ms apart with a 1 s timeout; want about 20", nc.sets)
	}
	d.Forget()
	d.Read(now, time.Second, time.Time{})
	if nc.sets == 0 || !nc.rd.Equal(d.rd.at) {
		t.Fatal("a deadline after Forget was not set")
	}
}
