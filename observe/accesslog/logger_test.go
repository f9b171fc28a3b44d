package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/gotthard-proxy/gotthard/observe"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string // in the error
	}{
		{"no output", Options{Format: JSON}, "Options.Path or Options.Writer"},
		{"two outputs", Options{Path: filepath.Join(dir, "a.log"), Writer: io.Discard, Format: JSON}, "both set"},
		{"no format", Options{Writer: io.Discard}, "Options.Format"},
		{"unknown format", Options{Writer: io.Discard, Format: 9}, "Options.Format"},
		{"small buffer", Options{Writer: io.Discard, Format: JSON, BufferSize: 100}, "Options.BufferSize"},
		{"negative interval", Options{Writer: io.Discard, Format: JSON, FlushInterval: -time.Second}, "Options.FlushInterval"},
		{"missing directory", Options{Path: filepath.Join(dir, "no", "a.log"), Format: JSON}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.opts)
			if err == nil {
				l.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{Path: filepath.Join(dir, "no", "a.log"), Format: JSON}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the open error %v does not wrap os.ErrNotExist", err)
	}
}

func TestDefaults(t *testing.T) {
	l, err := New(Options{Writer: io.Discard, Format: Combined})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Name() != "accesslog" || cap(l.cur) != DefaultBufferSize || l.interval != time.Second || l.stamps.loc != time.Local {
		t.Errorf("defaults: name %q, buffer %d, interval %v, location %v", l.Name(), cap(l.cur), l.interval, l.stamps.loc)
	}
}

// TestFileLines writes lines to a file and reads them back after Close.
func TestFileLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Path: path, Format: Combined, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	r := request()
	for range 3 {
		l.RequestEnd(r)
	}
	if b, _ := os.ReadFile(path); string(b) != "earlier line\n" {
		t.Errorf("lines written before a flush: %q", b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := "earlier line\n" + strings.Repeat(string(appendLine(nil, Combined, r, newStamps(time.UTC))), 3)
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("file\n%s\nwant\n%s", b, want)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	l.RequestEnd(r)
	if l.Dropped() != 1 {
		t.Errorf("a line after Close: Dropped = %d, want 1", l.Dropped())
	}
	if err := l.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
	if err := l.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close = %v", err)
	}
}

// TestConcurrentLinesWhole has many goroutines log at once through small buffers: each
// write to the output holds whole lines, and every line is there once.
func TestConcurrentLinesWhole(t *testing.T) {
	for _, f := range []Format{Combined, JSON} {
		t.Run(f.String(), func(t *testing.T) {
			out := newSink()
			l, err := New(Options{Writer: out, Format: f, BufferSize: MinBufferSize, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, lines = 8, 400
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					r := request()
					long := fields{"User-Agent", strings.Repeat("u", 5000)} // longer than a buffer
					for i := range lines {
						r.Target = fmt.Sprintf("/g%d/n%d", g, i)
						if i%97 == 0 {
							r.Header = &long
						} else {
							r.Header = &fields{"User-Agent", "ua"}
						}
						l.RequestEnd(r)
					}
				})
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for i, w := range out.Writes() {
				if len(w) == 0 || w[len(w)-1] != '\n' {
					t.Fatalf("write %d does not end a line: %q", i, w[max(0, len(w)-40):])
				}
			}
			seen := map[string]bool{}
			for line := range strings.Lines(out.String()) {
				r := request()
				var target string
				switch f {
				case Combined:
					_, rest, _ := strings.Cut(line, `"GET `)
					target, _, _ = strings.Cut(rest, " ")
				case JSON:
					_, rest, _ := strings.Cut(line, `"target":"`)
					target, _, _ = strings.Cut(rest, `"`)
				}
				r.Target = target
				if strings.Contains(line, "uuuu") {
					r.Header = &fields{"User-Agent", strings.Repeat("u", 5000)}
				} else {
					r.Header = &fields{"User-Agent", "ua"}
				}
				if want := string(appendLine(nil, f, r, newStamps(time.UTC))); line != want {
					t.Fatalf("line\n%q\nwant\n%q", line, want)
				}
				if seen[target] {
					t.Fatalf("line for %s written twice", target)
				}
				seen[target] = true
			}
			if len(seen) != goroutines*lines || l.Dropped() != 0 {
				t.Errorf("%d lines written, %d dropped; want %d, 0", len(seen), l.Dropped(), goroutines*lines)
			}
			t.Logf("%d lines in %d writes, %d dropped", len(seen), len(out.Writes()), l.Dropped())
		})
	}
}

// TestFlushInterval: with Run running, a line reaches the output within FlushInterval
// without any more traffic.
func TestFlushInterval(t *testing.T) {
	out := newSink()
	l, err := New(Options{Writer: out, Format: JSON, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	l.RequestEnd(request())
	select {
	case <-out.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the line was not flushed")
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Errorf("%d lines written, want 1", n)
	}
	l.RequestEnd(request())
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("after Run: %d lines written, want 2 (Run flushes when it ends)", n)
	}
}

// TestFlushByTraffic: without Run, a line that waited FlushInterval is written with the
// next one.
func TestFlushByTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newSink()
		l, err := New(Options{Writer: out, Format: Combined})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.RequestEnd(request())
		time.Sleep(999 * time.Millisecond)
		l.RequestEnd(request())
		if out.String() != "" {
			t.Fatal("written before the interval")
		}
		time.Sleep(time.Millisecond)
		l.RequestEnd(request())
		if n := strings.Count(out.String(), "\n"); n != 3 {
			t.Errorf("%d lines written, want 3", n)
		}
	})
}

// TestFlushByEndTime: a request's End with a monotonic clock reading (the engine's)
// is the time its line counts from, without a clock read of the Logger's own; one
// without (a wall time only) falls back on the Logger's clock. (Not in a synctest
// bubble, whose time.Now has no monotonic reading.)
func TestFlushByEndTime(t *testing.T) {
	out := newSink()
	l, err := New(Options{Writer: out, Format: Combined, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := func(end time.Time) *observe.Request {
		r := request()
		r.Start, r.End = end.Add(-time.Millisecond), end
		return r
	}
	now := time.Now()
	l.RequestEnd(at(now))
	l.RequestEnd(at(now.Add(2 * time.Hour).Round(0))) // no monotonic reading: the clock says little time passed
	if out.String() != "" {
		t.Fatal("a wall-clock End flushed the buffer: it must not be read for the interval")
	}
	l.RequestEnd(at(now.Add(time.Hour))) // monotonic: an interval after the first line
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines written after a request that ended an interval after the first, want 3", n)
	}
}

// failWriter fails every write with err, after writing the first n bytes of it.
type failWriter struct {
	mu    sync.Mutex
	n     int
	err   error
	calls int
}

func (w *failWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.err == nil {
		return len(p), nil
	}
	return min(w.n, len(p)), w.err
}

// TestWriteErrors: a failing output costs lines, counted, never a blocked request, and
// is logged at most once a minute.
func TestWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		w := &failWriter{err: syscall.ENOSPC}
		l, err := New(Options{Writer: w, Format: Combined, BufferSize: MinBufferSize,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		line := len(appendLine(nil, Combined, request(), newStamps(time.Local)))
		perBuffer := MinBufferSize / line
		for range 10 * perBuffer {
			l.RequestEnd(request())
		}
		if l.WriteErrors() == 0 {
			t.Fatal("no write error counted")
		}
		if d := l.Dropped(); d < uint64(9*perBuffer) {
			t.Errorf("Dropped = %d, want at least %d", d, 9*perBuffer)
		}
		if n := strings.Count(logs.String(), "write failed"); n != 1 {
			t.Errorf("%d error logs in the first minute, want 1:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "no space left on device") {
			t.Errorf("the log does not give the error:\n%s", logs.String())
		}
		time.Sleep(ErrorLogInterval)
		for range 2 * perBuffer {
			l.RequestEnd(request())
		}
		if n := strings.Count(logs.String(), "write failed"); n != 2 {
			t.Errorf("%d error logs after a minute, want 2", n)
		}
		w.mu.Lock()
		w.err = nil
		w.mu.Unlock()
		before := l.Dropped()
		l.RequestEnd(request())
		if err := l.Close(); err != nil {
			t.Errorf("Close after the output recovered: %v", err)
		}
		if l.Dropped() != before {
			t.Errorf("lines dropped after the output recovered")
		}
	})
}

// TestPartialWrite: a write that fails inside a line leaves the lines after it whole.
func TestPartialWrite(t *testing.T) {
	var out bytes.Buffer
	w := &partialWriter{out: &out, n: 10}
	l, err := New(Options{Writer: w, Format: Combined, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	l.RequestEnd(request())
	l.RequestEnd(request())
	if err := l.Flush(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Flush = %v, want EIO", err)
	}
	if l.Dropped() != 2 || l.WriteErrors() != 1 {
		t.Errorf("Dropped %d, WriteErrors %d; want 2, 1", l.Dropped(), l.WriteErrors())
	}
	l.RequestEnd(request())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	line := string(appendLine(nil, Combined, request(), newStamps(time.UTC)))
	if want := line[:10] + "\n" + line; out.String() != want {
		t.Errorf("output\n%q\nwant\n%q", out.String(), want)
	}
}

// partialWriter writes n bytes of its first write and fails it with EIO.
type partialWriter struct {
	out    io.Writer
	n      int
	failed bool
}

func (w *partialWriter) Write(p []byte) (int, error) {
	if !w.failed {
		w.failed = true
		n, _ := w.out.Write(p[:w.n])
		return n, syscall.EIO
	}
	return w.out.Write(p)
}

// TestFullDisk writes to /dev/full, where every write fails with ENOSPC.
func TestFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	var logs bytes.Buffer
	l, err := New(Options{Path: "/dev/full", Format: JSON, BufferSize: MinBufferSize,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for range n {
		l.RequestEnd(request())
	}
	if err := l.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Close = %v, want ENOSPC", err)
	}
	if l.Dropped() != n {
		t.Errorf("Dropped = %d, want %d", l.Dropped(), n)
	}
	if !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("the write error was not logged:\n%s", logs.String())
	}
}

// blockWriter blocks each write until release is closed.
type blockWriter struct {
	entered chan struct{} // closed at the first write
	release chan struct{}
	once    sync.Once
	n       int
	mu      sync.Mutex
}

func (w *blockWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	w.n += bytes.Count(p, []byte{'\n'})
	w.mu.Unlock()
	return len(p), nil
}

// TestStalledOutput: while one request is stuck writing, the others fill the second
// buffer, then one waits WriteTimeout and drops its line, and the ones after it drop
// theirs at once.
func TestStalledOutput(t *testing.T) {
	w := &blockWriter{entered: make(chan struct{}), release: make(chan struct{})}
	const timeout = 50 * time.Millisecond
	l, err := New(Options{Writer: w, Format: Combined, BufferSize: MinBufferSize, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	line := len(appendLine(nil, Combined, request(), newStamps(time.Local)))
	perBuffer := MinBufferSize / line
	stuck := make(chan struct{})
	go func() { // fills the first buffer, then writes it and blocks
		defer close(stuck)
		for range perBuffer + 1 {
			l.RequestEnd(request())
		}
	}()
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no write began")
	}
	done := make(chan struct{})
	var first, rest time.Duration
	go func() {
		defer close(done)
		begin := time.Now()
		for range perBuffer + 1 { // the second buffer, and the first line that waits
			l.RequestEnd(request())
		}
		first = time.Since(begin)
		for range 4*perBuffer - 1 {
			l.RequestEnd(request())
		}
		rest = time.Since(begin) - first
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests waited for a stalled write")
	}
	if first < timeout {
		t.Errorf("the line that found both buffers full returned after %v, before WriteTimeout", first)
	}
	if rest > 10*timeout {
		t.Errorf("the lines after it took %v: they waited for a stalled output", rest)
	}
	if l.Dropped() < uint64(3*perBuffer) {
		t.Errorf("Dropped = %d, want at least %d", l.Dropped(), 3*perBuffer)
	}
	close(w.release)
	<-stuck
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if total := uint64(w.n) + l.Dropped(); total != uint64(6*perBuffer+1) {
		t.Errorf("%d written + %d dropped, want %d", w.n, l.Dropped(), 6*perBuffer+1)
	}
}

// TestAllocs: no allocation per line in steady state.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	for _, f := range []Format{Combined, JSON} {
		l, err := New(Options{Writer: io.Discard, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		r := request()
		if n := testing.AllocsPerRun(1000, func() { l.RequestEnd(r) }); n != 0 {
			t.Errorf("%v: %v allocations per line, want 0", f, n)
		}
		l.Close()
	}
}

// TestFormatAllocs: formatting a line into a reused buffer allocates nothing (checked
// under the race detector too, unlike TestAllocs).
func TestFormatAllocs(t *testing.T) {
	r := request()
	buf := make([]byte, 0, 1024)
	for _, f := range []Format{Combined, JSON} {
		st := newStamps(time.Local)
		if n := testing.AllocsPerRun(1000, func() { buf = appendLine(buf[:0], f, r, st) }); n != 0 {
			t.Errorf("%v: %v allocations per line, want 0", f, n)
		}
	}
}
