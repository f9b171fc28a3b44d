package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCPUProfile runs the gateway with -cpuprofile: after SIGTERM the file holds a
// profile (gzip-compressed protocol buffers, as runtime/pprof writes it). A profile file
// that cannot be created is an error at start.
func TestCPUProfile(t *testing.T) {
	rec := startRecorder(t, nil)
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	gw := startProxying(t, rec.ln.Addr().String(), "-cpuprofile", file)
	for range 20 {
		if got := exchange(t, gw.addr, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "200\n") {
			t.Fatalf("response: %q", got)
		}
	}
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gw.waitCleanExit(t, "SIGTERM")
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("the profile is not gzip-compressed: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || len(b) == 0 {
		t.Fatalf("the profile: %d bytes, %v", len(b), err)
	}

	bad := startGateway(t, "-listen", "127.0.0.1:0", "-upstream", rec.ln.Addr().String(),
		"-cpuprofile", filepath.Join(t.TempDir(), "no-such-dir", "cpu.pprof"))
	select {
	case <-bad.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not exit with an unwritable profile file")
	}
	if bad.err == nil || !strings.Contains(bad.stderr.String(), "-cpuprofile") {
		t.Fatalf("unwritable profile file: exit %v, stderr %q", bad.err, bad.stderr.String())
	}
}
