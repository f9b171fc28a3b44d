package server

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// writePidFile writes the process id and a newline to path, mode 0644. It writes a
// temporary file beside path and renames it, so that a reader (a supervisor, a script
// following a graceful upgrade) sees the old id or the new one, never an empty file.
func writePidFile(path string) error {
	data := strconv.AppendInt(nil, int64(os.Getpid()), 10)
	data = append(data, '\n')
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("server: write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("server: write pid file: %w", err)
	}
	return nil
}

// removePidFile removes path if it still holds this process's id; after a graceful
// upgrade it holds the new process's id and must stay.
func removePidFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("server: remove pid file: %w", err)
	}
	if !bytes.Equal(bytes.TrimSpace(data), strconv.AppendInt(nil, int64(os.Getpid()), 10)) {
		return nil
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("server: remove pid file: %w", err)
	}
	return nil
}
