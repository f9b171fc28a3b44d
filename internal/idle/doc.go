// Package idle parks idle keep-alive HTTP/1.x client connections without a goroutine
// or a read per connection, and keeps the clock that serves busy ones "hot".
//
// A [Poller] holds an edge-triggered epoll set of the connections it was given
// ([Poller.Register]); a parked connection has no goroutine at all, and when its client
// sends the poller hands it to [Options.Dispatch]. A sweep closes connections parked for
// longer than the keep-alive timeout. The hot clock ends the waits of connections
// served hot ([Poller.HotJoin]) once they have waited for about the hot gap without a
// request, by moving their read deadline into the past.
//
// What a request does with a connection (when to park it, when to serve it hot) is the
// caller's: the poller needs of a connection only what [Conn] says, and keeps its own
// per-connection state in a [Handle] that the connection holds.
//
// All of it needs Linux (epoll); elsewhere [New] returns nil, a nil *Poller registers
// nothing and serves nothing hot, and callers keep a goroutine per connection.
package idle
