// Package deadline keeps the read and write deadlines last set on a connection, so
// that the proxy moves them only when they have fallen behind: setting a deadline
// costs a timer update, and a request would otherwise set several.
package deadline

import (
	"net"
	"time"
)

// Tracker keeps the read and write deadlines last set on a connection. Setting a
// deadline costs a timer update, so a deadline is moved only when it has fallen behind
// the wanted one by more than a twentieth of the timeout, or is later than wanted: every
// wait stays bounded by its timeout, and may end up to 5% early.
//
// A Tracker is used by one goroutine at a time, the one that reads (or writes) the
// connection; its zero value tracks no connection and must not be used.
type Tracker struct {
	nc     net.Conn
	rd, wd deadline
}

// New returns a Tracker of nc's deadlines, which it assumes are not set.
func New(nc net.Conn) Tracker { return Tracker{nc: nc} }

// deadline is one deadline as set on a connection, and until when it needs no change.
type deadline struct {
	at time.Time // the deadline set; zero if none is tracked
	// keep is the time until which at needs no change for waits bounded by span alone
	// (no total): the time at which it falls behind by a twentieth of span. Telling
	// that costs one comparison of two times, where computing now+timeout and its
	// distance to at costs several times more, on every request.
	keep time.Time
	span time.Duration // the timeout keep is for; 0 if none
}

// want is now+timeout, or total when that is sooner (total zero means none).
func want(now time.Time, timeout time.Duration, total time.Time) time.Time {
	t := now.Add(timeout)
	if !total.IsZero() && total.Before(t) {
		return total
	}
	return t
}

func stale(cur, want time.Time, timeout time.Duration) bool {
	return cur.After(want) || want.Sub(cur) > timeout/20
}

// update moves the deadline, if it must, to bound waits from now by timeout (and by
// total); it reports the new deadline and true when it moved.
func (d *deadline) update(now time.Time, timeout time.Duration, total time.Time) (time.Time, bool) {
	if total.IsZero() && timeout == d.span && now.Before(d.keep) {
		return time.Time{}, false
	}
	w := want(now, timeout, total)
	moved := stale(d.at, w, timeout)
	if moved {
		d.at = w
	}
	if total.IsZero() {
		// at is now within [now+timeout-timeout/20, now+timeout]; it stays so until
		// it is a twentieth behind.
		d.keep, d.span = d.at.Add(timeout/20-timeout), timeout
	} else {
		d.keep, d.span = time.Time{}, 0
	}
	return w, moved
}

// Read bounds the next reads by timeout from now (and by total; zero means none).
func (d *Tracker) Read(now time.Time, timeout time.Duration, total time.Time) {
	if w, moved := d.rd.update(now, timeout, total); moved {
		d.nc.SetReadDeadline(w)
	}
}

// Write bounds the next writes by timeout from now (and by total; zero means none).
func (d *Tracker) Write(now time.Time, timeout time.Duration, total time.Time) {
	if w, moved := d.wd.update(now, timeout, total); moved {
		d.nc.SetWriteDeadline(w)
	}
}

// ReadDeadline returns the read deadline last set through d, or zero if none is tracked.
func (d *Tracker) ReadDeadline() time.Time { return d.rd.at }

// Conn returns the connection whose deadlines d keeps.
func (d *Tracker) Conn() net.Conn { return d.nc }

// Forget drops the tracked deadlines, for a connection whose deadlines are set
// directly from then on.
func (d *Tracker) Forget() { d.rd, d.wd = deadline{}, deadline{} }
