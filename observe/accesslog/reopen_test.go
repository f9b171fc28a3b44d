package accesslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// targets returns the targets of the JSON lines in the file at path, failing the test
// on a line encoding/json cannot read.
func targets(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		var v struct{ Target string }
		if err := json.Unmarshal([]byte(line), &v); err != nil || !strings.HasSuffix(line, "\n") {
			t.Fatalf("%s: bad line %q: %v", path, line, err)
		}
		out = append(out, v.Target)
	}
	return out
}

func logTarget(l *Logger, target string) {
	r := request()
	r.Target = target
	l.RequestEnd(r)
}

// TestReopen moves the file away and reopens: the lines logged before the reopen are in
// the moved file, the lines after it in a new file by the old name.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := New(Options{Path: path, Format: JSON})
	if err != nil {
		t.Fatal(err)
	}
	logTarget(l, "/1")
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	logTarget(l, "/2") // buffered when the file is moved
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	logTarget(l, "/3")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	logTarget(l, "/4")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(targets(t, path+".1"), " "); got != "/1 /2 /3" {
		t.Errorf("moved file: %s", got)
	}
	if got := strings.Join(targets(t, path), " "); got != "/4" {
		t.Errorf("new file: %s", got)
	}
	// The new file has the mode a file created with 0644 gets here (the umask applies).
	ref := filepath.Join(dir, "ref")
	f, err := os.OpenFile(ref, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(path)
	rst, _ := os.Stat(ref)
	if st.Mode() != rst.Mode() {
		t.Errorf("new file mode %v, want %v", st.Mode(), rst.Mode())
	}
}

// TestReopenFails: if the file cannot be opened anew, the Logger keeps writing to the
// one it has.
func TestReopenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(Options{Path: path, Format: JSON})
	if err != nil {
		t.Fatal(err)
	}
	logTarget(l, "/1")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil { // a directory cannot be opened for writing
		t.Fatal(err)
	}
	if err := l.Reopen(); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Reopen = %v, want EISDIR", err)
	}
	logTarget(l, "/2")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(targets(t, path+".1"), " "); got != "/1 /2" {
		t.Errorf("old file: %s", got)
	}
}

// TestReopenWriter: with a Writer, Reopen only flushes.
func TestReopenWriter(t *testing.T) {
	out := newSink()
	l, err := New(Options{Writer: out, Format: JSON})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logTarget(l, "/1")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"target":"/1"`) {
		t.Errorf("Reopen did not flush: %q", out.String())
	}
}

// TestSIGUSR1 does what logrotate does while requests are being logged: it moves the
// file away and sends the process SIGUSR1. No line is lost or split, and the lines
// logged once the reopen is done go to the new file.
func TestSIGUSR1(t *testing.T) {
	// A SIGUSR1 arriving when no one listens would end the test binary; this listener
	// covers the time before and after Run's.
	own := make(chan os.Signal, 1)
	signal.Notify(own, syscall.SIGUSR1)
	defer signal.Stop(own)

	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(Options{Path: path, Format: JSON, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	reopened := make(chan error, 1)
	l.hookReady = func() { close(ready) }
	l.hookReopened = func(err error) { reopened <- err }
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- l.Run(ctx) }()
	waitFor(t, ready, "Run to listen for SIGUSR1")

	const writers = 4
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		counts  [writers]atomic.Int64
		started = make(chan struct{})
		once    sync.Once
		goal    atomic.Int64 // writer 0 closes more when it has logged this many
		more    = make(chan struct{})
		once2   sync.Once
	)
	goal.Store(-1)
	for g := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				logTarget(l, fmt.Sprintf("/w%d/%d", g, i))
				counts[g].Store(int64(i + 1))
				if i == 200 {
					once.Do(func() { close(started) })
				}
				if g == 0 {
					if n := goal.Load(); n >= 0 && int64(i) >= n {
						once2.Do(func() { close(more) })
					}
				}
			}
		})
	}
	waitFor(t, started, "lines to be logged")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reopened:
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reopen within 10s of SIGUSR1")
	}
	for i := range 10 {
		logTarget(l, fmt.Sprintf("/after/%d", i))
	}
	goal.Store(counts[0].Load() + 200)
	waitFor(t, more, "lines to be logged after the reopen")
	close(stop)
	wg.Wait()
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}

	old, cur := targets(t, path+".1"), targets(t, path)
	if len(old) == 0 || len(cur) == 0 {
		t.Fatalf("%d lines in the moved file, %d in the new one; want some in each", len(old), len(cur))
	}
	seen := map[string]int{}
	for _, tg := range old {
		if strings.HasPrefix(tg, "/after/") {
			t.Errorf("%s, logged after the reopen, is in the moved file", tg)
		}
		seen[tg]++
	}
	for _, tg := range cur {
		seen[tg]++
	}
	want := 10
	for g := range writers {
		n := int(counts[g].Load())
		want += n
		for i := range n {
			if tg := fmt.Sprintf("/w%d/%d", g, i); seen[tg] != 1 {
				t.Fatalf("%s is written %d times", tg, seen[tg])
			}
		}
	}
	if len(old)+len(cur) != want || l.Dropped() != 0 {
		t.Errorf("%d+%d lines, %d dropped; want %d lines, none dropped", len(old), len(cur), l.Dropped(), want)
	}
	t.Logf("%d lines in the moved file, %d in the new one", len(old), len(cur))
}

func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for %s", what)
	}
}

// TestSIGUSR1ReopenFails: a failed reopen on SIGUSR1 is logged, and Run goes on.
func TestSIGUSR1ReopenFails(t *testing.T) {
	own := make(chan os.Signal, 1)
	signal.Notify(own, syscall.SIGUSR1)
	defer signal.Stop(own)

	path := filepath.Join(t.TempDir(), "access.log")
	var logs strings.Builder
	var logMu sync.Mutex
	l, err := New(Options{Path: path, Format: JSON,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	reopened := make(chan error, 1)
	l.hookReady = func() { close(ready) }
	l.hookReopened = func(err error) { reopened <- err }
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- l.Run(ctx) }()
	waitFor(t, ready, "Run to listen for SIGUSR1")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reopened:
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.EISDIR) {
			t.Errorf("reopen error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reopen within 10s of SIGUSR1")
	}
	logTarget(l, "/1")
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := strings.Join(targets(t, path+".1"), " "); got != "/1" {
		t.Errorf("old file: %s", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "reopen on SIGUSR1 failed") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
