package acceptretry

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// The backoff's bounds.
const (
	minWait = 5 * time.Millisecond
	maxWait = time.Second
)

// Backoff is the wait of one loop after failed accepts, or failed reads of a socket
// that no one accepts on (the UDP service's). The zero value is ready; it belongs to
// the loop's goroutine.
type Backoff struct {
	wait time.Duration
}

// Next lengthens the backoff after a failure and returns how long to wait before
// trying again: 5 ms after the first failure, twice the last wait after each next one,
// at most a second.
func (b *Backoff) Next() time.Duration {
	b.wait = min(max(2*b.wait, minWait), maxWait)
	return b.wait
}

// Reset starts the backoff again after a try that succeeded (an accept, a read).
func (b *Backoff) Reset() { b.wait = 0 }

// failed returns how long to wait before accepting again after Accept returned err,
// and true; or false if the listener is closed and the loop must end.
func (b *Backoff) failed(err error) (time.Duration, bool) {
	if errors.Is(err, net.ErrClosed) {
		return 0, false
	}
	return b.Next(), true
}

// Wait waits for d to pass and reports true, or reports false as soon as stop is
// closed.
func Wait(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Retry is a loop's step after Accept on ln failed with err: it logs the failure on log,
// each message starting with prefix, waits out the backoff and reports true; or it
// reports false, for the loop to end, when ln is closed (logged at Error as "listener
// stopped") or stop is closed during the wait.
func (b *Backoff) Retry(err error, ln net.Listener, log *slog.Logger, prefix string, stop <-chan struct{}) bool {
	wait, ok := b.failed(err)
	if !ok {
		log.Error(prefix+"accept failed; listener stopped", "addr", ln.Addr().String(), "err", err)
		return false
	}
	log.Warn(prefix+"accept failed; retrying", "addr", ln.Addr().String(), "err", err, "backoff", wait)
	return Wait(wait, stop)
}

// Listener returns ln with the policy inside its Accept, for a server whose own loop
// ends on such errors (net/http's Server.Serve returns on any error that does not call
// itself temporary, ENOBUFS and ENOMEM among them): a failed accept is logged at Warn
// on log, with what, and retried after the backoff, so Accept returns an error only
// once ln is closed. Closing the returned listener ends a wait at once.
func Listener(ln net.Listener, log *slog.Logger, what string) net.Listener {
	return &listener{Listener: ln, log: log, what: what, closed: make(chan struct{})}
}

type listener struct {
	net.Listener
	log    *slog.Logger
	what   string
	closed chan struct{}
	once   sync.Once
}

// Accept returns the next connection. Its backoff is its own: it starts anew with
// each call, as a loop's does after an accept that succeeded.
func (l *listener) Accept() (net.Conn, error) {
	var b Backoff
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err // (the server's to log, or not, as it stops)
		}
		if !b.Retry(err, l, l.log, l.what+": ", l.closed) {
			return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
		}
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
