package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if !Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	if err := Notify(MainPID(42), Ready); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := ln.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "MAINPID=42\nREADY=1"; got != want {
		t.Fatalf("datagram %q, want %q", got, want)
	}
	if err := Notify(Reloading()); err != nil {
		t.Fatal(err)
	}
	n, err = ln.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(got, "=0") {
		t.Fatalf("datagram %q, want RELOADING=1 and a monotonic time", got)
	}
}

func TestNotifyAbstract(t *testing.T) {
	name := "gotthard-sdnotify-test-" + filepath.Base(t.TempDir())
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	if err := Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != Stopping {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, Stopping)
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if Enabled() {
		t.Fatal("Enabled() = true without NOTIFY_SOCKET")
	}
	if err := Notify(Ready); err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET: %v", err)
	}
}
