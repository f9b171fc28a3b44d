package acceptretry

import (
	"errors"
	"net"
	"time"
)

// The backoff's bounds.
const (
	minWait = 5 * time.Millisecond
	maxWait = time.Second
)

// Backoff is the wait of one accept loop after failed accepts. The zero value is
// ready; it belongs to the loop's goroutine.
type Backoff struct {
	wait time.Duration
}

// Failed returns how long to wait before accepting again after Accept returned err,
// and true; or false if the listener is closed and the loop must end.
func (b *Backoff) Failed(err error) (time.Duration, bool) {
	if errors.Is(err, net.ErrClosed) {
		return 0, false
	}
	b.wait = min(max(2*b.wait, minWait), maxWait)
	return b.wait, true
}

// Accepted starts the backoff again after an accept that succeeded.
func (b *Backoff) Accepted() { b.wait = 0 }
