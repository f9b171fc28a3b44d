//go:build !linux

package upwatch

import "syscall"

// Watcher is not available here: [New] returns nil, and a nil *Watcher watches nothing.
type Watcher struct{}

// Conn is a connection a [Watcher] watches.
type Conn interface {
	// PeerClosed is called when the peer closed the connection (never, here).
	PeerClosed(drained func() bool)
}

// New returns nil: there is no Watcher here.
func New() *Watcher { return nil }

// Add reports false: nothing is watched.
func (w *Watcher) Add(syscall.RawConn, Conn) (int32, bool) { return 0, false }

// Remove does nothing.
func (w *Watcher) Remove(int32, Conn) {}

// Run returns at once.
func (w *Watcher) Run() {}

// Stop does nothing.
func (w *Watcher) Stop() {}

// Release does nothing.
func (w *Watcher) Release() {}
