//go:build !linux

package idle

import "time"

// Poller parks idle connections on Linux only (see poller_linux.go): [New] returns
// nil here, a nil *Poller registers nothing and has no room for hot connections, and
// every connection keeps its goroutine.
type Poller[T Conn] struct{}

// New returns nil: there is no Poller here.
func New[T Conn](Options[T]) *Poller[T] { return nil }

// Register reports false: nothing is parked.
func (p *Poller[T]) Register(T) bool { return false }

// Unregister reports false.
func (p *Poller[T]) Unregister(T) bool { return false }

// Forget does nothing.
func (p *Poller[T]) Forget(T) {}

// Parked does nothing.
func (p *Poller[T]) Parked(*Handle) {}

// Run returns at once.
func (p *Poller[T]) Run() {}

// Close does nothing.
func (p *Poller[T]) Close() {}

// HotRoom reports false: no connection is served hot.
func (p *Poller[T]) HotRoom(time.Duration) bool { return false }

// HotJoin reports false.
func (p *Poller[T]) HotJoin(T) bool { return false }

// HotLeave reports false.
func (p *Poller[T]) HotLeave(T) bool { return false }

// HotRewait does nothing.
func (p *Poller[T]) HotRewait(*Handle) {}

// HotTime returns time.Now().
func (p *Poller[T]) HotTime() time.Time { return time.Now() }

// KickAll does nothing.
func (p *Poller[T]) KickAll() {}
