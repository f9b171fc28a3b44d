package sockfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	if err := RemoveStale(filepath.Join(dir, "none.sock")); err != nil {
		t.Fatalf("no file: %v", err)
	}

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStale(plain); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("a plain file: %v, want ErrNotSocket", err)
	}

	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := RemoveStale(live); !errors.Is(err, ErrInUse) {
		t.Fatalf("a served socket: %v, want ErrInUse", err)
	}

	stale := filepath.Join(dir, "stale.sock")
	old, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if err := RemoveStale(stale); err != nil {
		t.Fatalf("a stale socket: %v", err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale socket still there: %v", err)
	}
}

func TestRemoveIfSame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced by another file (the first one kept elsewhere, so that its inode is not
	// reused): kept.
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	RemoveIfSame(path, info)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("a replaced file was removed: %v", err)
	}
	info, _ = os.Lstat(path)
	RemoveIfSame(path, info)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("own file not removed: %v", err)
	}
}
