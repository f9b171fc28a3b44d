package proxy

import (
	"net"
	"time"
)

// deadlines keeps the read and write deadlines last set on a connection. Setting a
// deadline costs a timer update, so a deadline is moved only when it has fallen behind
// the wanted one by more than a twentieth of the timeout, or is later than wanted: every
// wait stays bounded by its timeout, and may end up to 5% early.
type deadlines struct {
	nc     net.Conn
	rd, wd time.Time
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked read at once. It is
// never changed.
var aLongTimeAgo = time.Unix(1, 0)

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

// fresh reports whether the deadline cur, which bounds waits by timeout with no total,
// still needs no change at now: it is not after now+timeout, and not before it by more
// than a twentieth of timeout. It is stale's common case without computing now+timeout,
// which costs more than the subtraction. (A sum that overflows, for a cur far from now,
// is negative: not fresh.)
func fresh(cur, now time.Time, timeout time.Duration) bool {
	if cur.IsZero() {
		return false
	}
	lag := now.Sub(cur) + timeout // how far cur is before now+timeout
	return lag >= 0 && lag <= timeout/20
}

// read bounds the next reads by timeout from now (and by total).
func (d *deadlines) read(now time.Time, timeout time.Duration, total time.Time) {
	if total.IsZero() && fresh(d.rd, now, timeout) {
		return
	}
	if w := want(now, timeout, total); stale(d.rd, w, timeout) {
		d.rd = w
		d.nc.SetReadDeadline(w)
	}
}

// write bounds the next writes by timeout from now (and by total).
func (d *deadlines) write(now time.Time, timeout time.Duration, total time.Time) {
	if total.IsZero() && fresh(d.wd, now, timeout) {
		return
	}
	if w := want(now, timeout, total); stale(d.wd, w, timeout) {
		d.wd = w
		d.nc.SetWriteDeadline(w)
	}
}
