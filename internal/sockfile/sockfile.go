package sockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// Errors of [RemoveStale], wrapped with the path.
var (
	// ErrNotSocket: the path names a file that is not a socket.
	ErrNotSocket = errors.New("file exists and is not a socket")
	// ErrInUse: a process accepts connections on the socket.
	ErrInUse = errors.New("socket is in use by another process")
)

// RemoveStale removes the socket file at path if no process accepts connections on it.
// It returns nil if there is no file, and an error wrapping [ErrNotSocket] or [ErrInUse]
// if the file must stay.
func RemoveStale(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s: %w", path, ErrNotSocket)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: probe the socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveIfSame removes the file at path if it is still the file info describes.
func RemoveIfSame(path string, info fs.FileInfo) {
	if cur, err := os.Lstat(path); err == nil && os.SameFile(cur, info) {
		_ = os.Remove(path)
	}
}
