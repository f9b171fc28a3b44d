package l4

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// copyBufSize is the buffer of a direction that cannot splice (TLS on a side, or
	// a platform without splice).
	copyBufSize = 32 << 10
	// spliceChunk is the most one splice(2) call moves before the direction counts its
	// bytes: a call moves what is queued on the source, up to this.
	spliceChunk = 1 << 20
)

// flow copies bytes both ways between a client and its peer.
type flow struct {
	idle       time.Duration // <= 0: none
	total      time.Time     // zero: none
	client, up net.Conn
	// clientW, if not nil, is where bytes to the client are written instead of client:
	// the socket under a passthrough client's connection, which replays the peeked
	// hello on reads only, so that the peer-to-client direction can splice.
	clientW net.Conn
	bufs    *sync.Pool
	abort   func(error)

	last atomic.Int64 // unix nanoseconds of the last byte counted either way
	// upQuiet and downQuiet tell whether a direction found the connection idle (nothing
	// counted for idle) at its last read deadline, or is done, and counted nothing since.
	upQuiet, downQuiet atomic.Bool
}

// run copies until both directions are done or one fails; it returns the first error.
func (f *flow) run(toUp, toClient *atomic.Int64) error {
	f.last.Store(time.Now().UnixNano())
	toC := f.client
	if f.clientW != nil {
		toC = f.clientW
	}
	if !f.total.IsZero() {
		toC.SetWriteDeadline(f.total)
		f.up.SetWriteDeadline(f.total)
	}
	upDone := make(chan struct{})   // the client-to-peer direction ended
	downDone := make(chan struct{}) // the peer-to-client direction ended
	var downErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		downErr = f.direction(toC, f.up, toClient, &f.downQuiet, &f.upQuiet, "peer to client")
		close(downDone)
		if downErr != nil {
			f.abort(downErr)
		} else {
			f.watch(upDone)
		}
	}()
	upErr := f.direction(f.up, f.client, toUp, &f.upQuiet, &f.downQuiet, "client to peer")
	close(upDone)
	if upErr != nil {
		f.abort(upErr)
	} else {
		f.watch(downDone)
	}
	<-exited
	// The first failure is the cause: the other direction then fails on the closed
	// sockets. A direction that failed on its own deadline is the cause too.
	switch {
	case upErr != nil && downErr != nil:
		if isClosed(upErr) && !isClosed(downErr) {
			return downErr
		}
		return upErr
	case upErr != nil:
		return upErr
	}
	return downErr
}

// watch guards the other direction once this one is done: a direction blocked writing
// to a receiver that does not read meets no read deadline, so it is cut when no byte
// was counted for 2×idle (a direction that reads counts its bytes at least every idle).
func (f *flow) watch(other <-chan struct{}) {
	if f.idle <= 0 && f.total.IsZero() {
		<-other
		return
	}
	var t *time.Timer
	for {
		wait := time.Duration(1<<63 - 1)
		now := time.Now()
		if f.idle > 0 {
			wait = time.Unix(0, f.last.Load()).Add(2 * f.idle).Sub(now)
		}
		if !f.total.IsZero() {
			wait = min(wait, f.total.Sub(now))
		}
		if wait <= 0 {
			if !f.total.IsZero() && !now.Before(f.total) {
				f.abort(ErrTotalTimeout)
			} else {
				f.abort(ErrIdleTimeout)
			}
			<-other
			return
		}
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
		} else {
			t.Reset(wait)
		}
		select {
		case <-other:
			return
		case <-t.C:
		}
	}
}

// direction copies src to dst until src's end, which it carries to dst with
// CloseWrite; it returns nil then, or the error that ended the copy.
func (f *flow) direction(dst, src net.Conn, count *atomic.Int64, quiet, otherQuiet *atomic.Bool, name string) error {
	var chunk func() (int64, bool, error)
	if spliceable(dst, src) {
		var err error
		if chunk, err = spliceChunker(dst, src); err != nil {
			return fmt.Errorf("l4: %s: %w", name, err)
		}
	} else {
		bp := f.bufs.Get().(*[]byte)
		defer f.bufs.Put(bp)
		buf := *bp
		chunk = func() (int64, bool, error) {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return 0, false, werr
				}
			}
			if err == io.EOF {
				return int64(n), true, nil
			}
			return int64(n), false, err
		}
	}
	arm := func(now time.Time) {
		want := time.Time{}
		if f.idle > 0 {
			want = now.Add(f.idle)
		}
		if !f.total.IsZero() && (want.IsZero() || f.total.Before(want)) {
			want = f.total
		}
		src.SetReadDeadline(want)
	}
	arm(time.Now())
	for {
		n, eof, err := chunk()
		if n > 0 {
			count.Add(n)
			f.last.Store(time.Now().UnixNano())
			quiet.Store(false)
		}
		if eof {
			quiet.Store(true) // a direction that is done is quiet for good
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil && !isClosed(err) {
					return fmt.Errorf("l4: %s: close write: %w", name, err)
				}
			}
			return nil
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("l4: %s: %w", name, err)
		}
		now := time.Now()
		if !f.total.IsZero() && !now.Before(f.total) {
			return ErrTotalTimeout
		}
		if n == 0 && f.idle > 0 {
			// Nothing to read now. The other direction counts the bytes it moves only
			// once written, so it may be in the middle of a write: the connection is
			// idle when nothing was counted for idle and the other direction found it
			// so too at its own last deadline, or when nothing was counted for 2×idle
			// (the other direction blocked writing to a receiver that does not read).
			since := now.Sub(time.Unix(0, f.last.Load()))
			if since >= f.idle && otherQuiet.Load() || since >= 2*f.idle {
				return ErrIdleTimeout
			}
			quiet.Store(since >= f.idle)
		}
		arm(now)
	}
}

// isClosed reports whether err is the error of a use of a closed socket: what the
// other direction sees after abort closed both.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
