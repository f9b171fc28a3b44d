package tls

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// TicketKeySize is the size of one session ticket key in a ticket key file.
const TicketKeySize = 32

// maxTicketKeys bounds the keys read from a file.
const maxTicketKeys = 16

// readTicketKeys reads a ticket key file: 1 to 16 keys of 32 bytes, newest first.
func readTicketKeys(path string) ([][32]byte, fileStamp, error) {
	b, st, err := readStamped(path)
	if err != nil {
		return nil, st, err
	}
	keys, err := parseTicketKeys(b)
	if err != nil {
		return nil, st, fmt.Errorf("%s: %w", path, err)
	}
	return keys, st, nil
}

func parseTicketKeys(b []byte) ([][32]byte, error) {
	if len(b) == 0 || len(b)%TicketKeySize != 0 || len(b)/TicketKeySize > maxTicketKeys {
		return nil, fmt.Errorf("%d bytes: a ticket key file holds 1 to %d keys of %d bytes", len(b), maxTicketKeys, TicketKeySize)
	}
	keys := make([][32]byte, len(b)/TicketKeySize)
	for i := range keys {
		copy(keys[i][:], b[i*TicketKeySize:])
	}
	return keys, nil
}

// RotateTicketKeyFile puts a new random key at the front of the ticket key file at path
// (creating the file if it does not exist) and keeps at most keep keys (if keep is zero
// or less, 3), dropping the oldest. The file is replaced atomically (written beside it,
// then renamed) with mode 0600. Run it on a schedule (say daily) on one machine, copy the
// file to the others, and reload each process (SIGHUP, or let the file watch see it):
// tickets issued under the last keep keys still resume.
func RotateTicketKeyFile(path string, keep int) error {
	if keep <= 0 {
		keep = 3
	}
	keep = min(keep, maxTicketKeys)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tls: %w", err)
	}
	if len(old) > 0 {
		if _, err := parseTicketKeys(old); err != nil {
			return fmt.Errorf("tls: %s: %w", path, err)
		}
	}
	b := make([]byte, TicketKeySize, TicketKeySize+len(old))
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	b = append(b, old...)
	b = b[:min(len(b), keep*TicketKeySize)]
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
