//go:build unix

package disk

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the file at name, creating it, and returns the
// function that releases it. The lock ends with the process, so a crash leaves none.
func lockDir(name string) (func() error, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("directory in use by another store: %w", err)
	}
	return f.Close, nil
}
