package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// ErrClosed is returned by the methods of a [Logger] that was closed.
var ErrClosed = errors.New("accesslog: logger closed")

// fileMode is the mode of a log file the Logger creates (less the umask).
const fileMode = 0o644

// Logger writes an access log line for each request it observes, at RequestEnd. It is
// an [observe.Observer] (give it to proxy.ServiceOptions.Observers) and a server
// background service by its method set ([Logger.Name], [Logger.Run]). It is safe for
// concurrent use.
//
// Lines are formatted outside any lock, then appended to a buffer under a short lock;
// a full buffer (or one whose first line is older than FlushInterval) is swapped with
// a second one and written out by the request that found it so, under a second lock,
// while the other requests go on filling the second buffer. A request whose line finds
// the second buffer full too waits for the write in progress, up to WriteTimeout; past
// that (the output is stalled), its line is dropped and counted ([Logger.Dropped]), and
// the requests after it drop theirs at once until a write completes.
type Logger struct {
	observe.Base

	// Immutable after New.
	name         string
	path         string
	format       Format
	interval     time.Duration
	writeTimeout time.Duration
	stamps       *stamps
	epoch        time.Time // New's time, with its monotonic reading: see clock
	log          *slog.Logger
	lines        sync.Pool // of *[]byte, each holding one formatted line
	timers       sync.Pool // of stopped *time.Timer, for waits on wlock

	dropped     atomic.Uint64
	writeErrors atomic.Uint64
	stalled     atomic.Bool // a wait for wlock timed out, and no write completed since

	// Guarded by mu, which is held only to append to cur or swap it, never for I/O.
	mu     sync.Mutex
	cur    []byte        // lines waiting to be written; cap is the buffer size
	since  time.Duration // when the first line went into an empty cur (see clock)
	closed bool

	// wlock is the write lock (holding it is having put the one value in): held by
	// whoever writes (a request, Run, Flush, Reopen, Close). It is a channel so that a
	// request can wait for it with a deadline. The lock order is wlock, then mu; under
	// mu, wlock is only ever tried.
	wlock chan struct{}
	// Guarded by wlock.
	out      io.Writer
	file     *os.File      // out when Path is set; nil otherwise
	spare    []byte        // the second buffer, empty, swapped with cur at each write
	broken   bool          // a write ended inside a line: the next starts a new line
	lastLog  time.Duration // when a write error was last logged (see clock)
	logged   bool          // whether one was
	loggedAt uint64        // writeErrors when last logged

	// Test hooks, set before Run starts.
	hookReady    func()      // Run listens for SIGUSR1
	hookReopened func(error) // Run reopened on SIGUSR1
}

var _ observe.Observer = (*Logger)(nil)

// New returns a Logger writing to opts.Path (opened for appending, created if needed)
// or opts.Writer. It fails, naming the field, if the options are not valid, or if the
// file cannot be opened.
func New(opts Options) (*Logger, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	l := &Logger{
		name:         opts.Name,
		path:         opts.Path,
		format:       opts.Format,
		interval:     opts.FlushInterval,
		writeTimeout: opts.WriteTimeout,
		stamps:       newStamps(opts.Location),
		epoch:        time.Now(),
		log:          opts.Logger,
		cur:          make([]byte, 0, opts.BufferSize),
		spare:        make([]byte, 0, opts.BufferSize),
		wlock:        make(chan struct{}, 1),
		out:          opts.Writer,
	}
	l.lines.New = func() any {
		b := make([]byte, 0, 512)
		return &b
	}
	l.timers.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	if opts.Path != "" {
		f, err := openFile(opts.Path)
		if err != nil {
			return nil, err
		}
		l.file, l.out = f, f
	}
	return l, nil
}

// openFile opens path for appending, creating it if needed.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("accesslog: open: %w", err)
	}
	return f, nil
}

// clock returns the time since New on the monotonic clock: the Logger's time for its
// flush interval and its error logs, read once per line. It reads the monotonic clock
// only, so that a step of the wall clock neither holds lines back nor flushes early.
func (l *Logger) clock() time.Duration { return time.Since(l.epoch) }

// Name returns Options.Name: the Logger's name as a server service.
func (l *Logger) Name() string { return l.name }

// Dropped returns the number of lines not written: dropped while the output was stalled
// (both buffers full, and the write in progress older than WriteTimeout), lost to a
// failed write, or logged after Close.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// WriteErrors returns the number of writes to the output that failed.
func (l *Logger) WriteErrors() uint64 { return l.writeErrors.Load() }

// ObservedEvents tells the service the logger uses RequestEnd only.
func (l *Logger) ObservedEvents() observe.Events { return observe.EventRequestEnd }

// RequestEnd writes r's line. It waits for another request's write only when both
// buffers are full, and then for WriteTimeout at most; it allocates nothing in steady
// state (except what r.Err's Error method allocates, for a request that failed).
func (l *Logger) RequestEnd(r *observe.Request) {
	bp := l.lines.Get().(*[]byte)
	line := appendLine((*bp)[:0], l.format, r, l.stamps)
	l.writeLine(line, l.endClock(r))
	if cap(line) > maxPooledLine {
		return // a rare huge line: let its buffer go rather than keep it in the pool
	}
	*bp = line[:0]
	l.lines.Put(bp)
}

// maxPooledLine is the capacity above which a line's buffer is not reused.
const maxPooledLine = 16 << 10

// endClock returns the Logger's clock (see clock) at r's end: read off r.End when it
// carries a monotonic clock reading, as the engine's requests do, without reading the
// clock again; else read now.
func (l *Logger) endClock(r *observe.Request) time.Duration {
	// Round(0) strips a monotonic reading: the two differ exactly when r.End has one.
	if t := r.End; t != t.Round(0) {
		return t.Sub(l.epoch)
	}
	return l.clock()
}

// writeLine appends line, of a request that ended at now (see clock), to the buffer,
// and writes the buffer out if it is full or its first line is older than the flush
// interval.
func (l *Logger) writeLine(line []byte, now time.Duration) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	if len(l.cur)+len(line) <= cap(l.cur) {
		if len(l.cur) == 0 {
			l.since = now
		}
		l.cur = append(l.cur, line...)
		if now-l.since < l.interval || !l.tryLockW() {
			// Young enough; or old, but someone is writing: a later line or Run's next
			// tick writes it.
			l.mu.Unlock()
			return
		}
		l.writeLocked(nil, now)
		return
	}
	// The line does not fit: write the buffer out, waiting for the write in progress
	// if there is one.
	if !l.tryLockW() {
		l.mu.Unlock()
		if !l.lockWTimeout() {
			l.dropped.Add(1)
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			l.unlockW()
			l.dropped.Add(1)
			return
		}
		if len(l.cur)+len(line) <= cap(l.cur) { // the write we waited for made room
			if len(l.cur) == 0 {
				l.since = now
			}
			l.cur = append(l.cur, line...)
			l.mu.Unlock()
			l.unlockW()
			return
		}
	}
	l.writeLocked(line, now)
}

// writeLocked swaps the buffers, puts line (if not nil) into the new current one, and
// writes the old one out (and line after it if it is longer than a buffer); l.mu and
// wlock are held, and both are released.
func (l *Logger) writeLocked(line []byte, now time.Duration) {
	buf := l.swapLocked()
	if line != nil && len(line) <= cap(l.cur) {
		l.cur = append(l.cur, line...)
		l.since = now
		line = nil
	}
	l.mu.Unlock()
	err := l.writeBuf(buf)
	if line != nil { // longer than a buffer: written on its own
		if err2 := l.writeOut(line); err == nil {
			err = err2
		}
	}
	if err != nil {
		l.logWriteError(err, now)
	}
	l.unlockW()
}

// lockW takes the write lock.
func (l *Logger) lockW() { l.wlock <- struct{}{} }

// unlockW releases the write lock.
func (l *Logger) unlockW() { <-l.wlock }

// tryLockW takes the write lock if it is free.
func (l *Logger) tryLockW() bool {
	select {
	case l.wlock <- struct{}{}:
		return true
	default:
		return false
	}
}

// lockWTimeout takes the write lock, waiting for it up to the write timeout, unless
// the output is known to be stalled. It reports whether it took it.
func (l *Logger) lockWTimeout() bool {
	if l.tryLockW() {
		return true
	}
	if l.stalled.Load() {
		return false
	}
	t := l.timers.Get().(*time.Timer)
	defer l.timers.Put(t)
	t.Reset(l.writeTimeout)
	select {
	case l.wlock <- struct{}{}:
		t.Stop() // since Go 1.23, no stale tick is left in t.C after Stop
		return true
	case <-t.C:
		l.stalled.Store(true)
		return false
	}
}

// swapLocked makes the spare buffer current and returns the full one; l.mu and wlock
// are held. The returned buffer goes back as the spare after it is written.
func (l *Logger) swapLocked() []byte {
	buf := l.cur
	l.cur = l.spare[:0]
	l.spare = nil
	return buf
}

// writeBuf writes buf, a buffer swapped out of cur, and keeps it as the spare buffer;
// wlock is held.
func (l *Logger) writeBuf(buf []byte) error {
	err := l.writeOut(buf)
	l.spare = buf[:0]
	return err
}

// writeOut writes buf to the output; wlock is held. On an error the lines not wholly
// written are counted as dropped, and if the write ended inside a line, the next write
// starts with a newline so that the lines after it stay whole.
func (l *Logger) writeOut(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if l.broken {
		if _, err := l.out.Write([]byte{'\n'}); err != nil {
			l.failed(buf)
			return err
		}
		l.broken = false
	}
	n, err := l.out.Write(buf)
	l.stalled.Store(false)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n < 0 || n > len(buf) {
			n = 0
		}
		l.failed(buf[n:])
		if n > 0 && buf[n-1] != '\n' {
			l.broken = true
		}
		return err
	}
	return nil
}

// failed counts a failed write and the lines of rest, the part not written.
func (l *Logger) failed(rest []byte) {
	l.writeErrors.Add(1)
	l.dropped.Add(uint64(bytes.Count(rest, []byte{'\n'})))
}

// logWriteError logs err unless a write error was logged less than ErrorLogInterval
// ago; wlock is held.
func (l *Logger) logWriteError(err error, now time.Duration) {
	if l.logged && now-l.lastLog < ErrorLogInterval {
		return
	}
	n := l.writeErrors.Load()
	l.log.Error("accesslog: write failed", "logger", l.name, "path", l.path, "error", err,
		"write_errors", n-l.loggedAt, "dropped_total", l.dropped.Load())
	l.lastLog, l.loggedAt, l.logged = now, n, true
}

// Flush writes out the lines waiting in the buffer. It waits for a write in progress.
func (l *Logger) Flush() error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	buf := l.swapLocked()
	l.mu.Unlock()
	if err := l.writeBuf(buf); err != nil {
		return fmt.Errorf("accesslog: flush: %w", err)
	}
	return nil
}

// flushTick writes out the waiting lines, unless a write is in progress (then the
// next tick will).
func (l *Logger) flushTick(now time.Duration) {
	if !l.tryLockW() {
		return
	}
	l.mu.Lock()
	if l.closed || len(l.cur) == 0 {
		l.mu.Unlock()
		l.unlockW()
		return
	}
	l.writeLocked(nil, now)
}

// Reopen writes out the waiting lines to the current file, then opens Options.Path
// anew and writes the next lines there: after logrotate moved the file away, the new
// lines go to a new file by the old name. If the open fails, the Logger keeps the
// file it has and returns the error. With Options.Writer, Reopen only flushes.
func (l *Logger) Reopen() error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	buf := l.swapLocked()
	l.mu.Unlock()
	werr := l.writeBuf(buf)
	if werr != nil {
		werr = fmt.Errorf("accesslog: flush before reopen: %w", werr)
	}
	if l.file == nil {
		return werr
	}
	f, err := openFile(l.path)
	if err != nil {
		return errors.Join(werr, fmt.Errorf("accesslog: reopen: %w", err))
	}
	old := l.file
	l.file, l.out, l.broken = f, f, false
	if err := old.Close(); err != nil {
		return errors.Join(werr, fmt.Errorf("accesslog: close the old file: %w", err))
	}
	return werr
}

// Close writes out the waiting lines and closes the file (not Options.Writer). Lines
// logged after it are dropped and counted. Closing twice returns nil.
func (l *Logger) Close() error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	buf := l.swapLocked()
	l.mu.Unlock()
	var errs []error
	if err := l.writeBuf(buf); err != nil {
		errs = append(errs, fmt.Errorf("accesslog: flush: %w", err))
	}
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("accesslog: close: %w", err))
		}
		l.file = nil
	}
	l.out = nil
	return errors.Join(errs...)
}

// Run makes the Logger a server background service: it flushes the buffer every
// FlushInterval, reopens the file (see [Logger.Reopen]) when the process gets SIGUSR1,
// as logrotate's postrotate step sends it, and, when ctx ends, flushes and closes the
// Logger, returning Close's error. Run it once.
//
// Signals are received with signal.Notify on Run's own channel, so other listeners
// in the process see them too; a failed reopen is logged and the old file kept.
func (l *Logger) Run(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	if l.hookReady != nil {
		l.hookReady()
	}
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return l.Close()
		case <-tick.C:
			l.flushTick(l.clock())
		case <-sig:
			err := l.Reopen()
			if err != nil {
				l.log.Error("accesslog: reopen on SIGUSR1 failed", "logger", l.name, "path", l.path, "error", err)
			}
			if l.hookReopened != nil {
				l.hookReopened(err)
			}
		}
	}
}
