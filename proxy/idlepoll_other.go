//go:build !linux

package proxy

import "time"

// idlePoller parks idle connections on Linux only (see idlepoll_linux.go); elsewhere
// every connection keeps its goroutine.
type idlePoller[C any] struct{}

func newIdlePoller[C any](*Service[C]) *idlePoller[C] { return nil }

func (p *idlePoller[C]) register(*conn[C]) bool     { return false }
func (p *idlePoller[C]) forget(*conn[C])            {}
func (p *idlePoller[C]) run()                       {}
func (p *idlePoller[C]) close()                     {}
func (p *idlePoller[C]) tick() int64                { return 0 }
func (p *idlePoller[C]) unregister(*conn[C]) bool   { return false }
func (p *idlePoller[C]) hotRoom(time.Duration) bool { return false }
func (p *idlePoller[C]) hotNow() int64              { return 0 }
func (p *idlePoller[C]) hotTime() time.Time         { return time.Now() }
func (p *idlePoller[C]) hotJoin(*conn[C]) bool      { return false }
func (p *idlePoller[C]) hotLeave(*conn[C]) bool     { return false }
func (p *idlePoller[C]) kickAll()                   {}
