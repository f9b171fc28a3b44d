// Package upwatch tells, without reading from them, whether the peers of connections
// have closed them: a non-blocking peek at an idle socket ([Peeker]), a poll for a
// client's FIN ([ClientClosed]), and a [Watcher] that learns of upstream connections'
// closes from an epoll set of its own, so that taking a pooled connection costs no
// syscall.
//
// All of it needs Linux (MSG_PEEK with MSG_DONTWAIT, POLLRDHUP, epoll); elsewhere
// [CanPeek] is false, [ClientClosed] reports false and [New] returns nil, and callers
// fall back on finding out when they next read or write.
package upwatch
