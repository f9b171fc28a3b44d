// Package proxy is the HTTP proxy engine: a user implements [ProxyHTTP] (one required
// phase, UpstreamPeer, plus any of the optional phases that [Phases] provides defaults for)
// and runs it as a [Service].
//
//	type Gateway struct{ proxy.Phases[*Ctx] }
//	type Ctx struct{ user string }
//
//	func (Gateway) NewCtx() *Ctx { return &Ctx{} }
//	func (Gateway) UpstreamPeer(ctx context.Context, s *proxy.Session, c *Ctx) (*proxy.Peer, error) {
//		return proxy.NewPeer("127.0.0.1:8080") // better made once, in main
//	}
//
//	svc, err := proxy.NewService("gateway", Gateway{}, proxy.ServiceOptions{})
//	svc.AddTCP("0.0.0.0:6188")
//	srv.Add(svc) // a server.Server runs it, with graceful shutdown
//
// # Phases
//
// Each request goes through these phases, in this order (names as in Pingora):
//
//	NewCtx
//	  │
//	EarlyRequestFilter
//	  │
//	modules' RequestFilter ─── Handled ───────────────────────────┐
//	  │                                                            │
//	RequestFilter ──────────── Handled ───────────────────────────┤
//	  │                                                            │
//	ProxyUpstreamFilter ────── Handled ───────────────────────────┤
//	  │                                                            │
//	UpstreamPeer ◄──────────────────────────────┐ (retry)          │
//	  │                                          │                 │
//	  ├── connect failed ── FailToConnect ───────┤                 │
//	  │                                          │                 │
//	ConnectedToUpstream                          │                 │
//	  │                                          │                 │
//	UpstreamRequestFilter                        │                 │
//	  │                                          │                 │
//	modules', then RequestBodyFilter (each piece)│                 │
//	  │                                          │                 │
//	  ├── error ────────── ErrorWhileProxy ──────┘                 │
//	  │                                                            │
//	UpstreamResponseFilter                                         │
//	  │                                                            │
//	ResponseFilter, then the modules'                              │
//	  │                                                            │
//	UpstreamResponseBodyFilter, ResponseBodyFilter, the modules'   │
//	  (each piece)                                                 │
//	  │                                                            │
//	ResponseTrailerFilter, the modules' (if it has trailers)       │
//	  │                                                            │
//	modules' Done, then Logging ◄──────────────────────────────────┘
//
// Modules ([Module], registered in [ServiceOptions.Modules]) run where the chart names
// them, in the order of that slice.
//
// Any phase error, or a failure without a retry, goes to FailToProxy (which may write its
// own response; otherwise the client gets a plain error page with [ErrorStatus]) and then
// Logging. SuppressErrorLog decides whether the failure is logged.
//
// # What the framework does before the phases see a request
//
// The HTTP/1.x codec rejects what enables request smuggling (Content-Length together with
// Transfer-Encoding, differing Content-Length values, obs-fold, bare CR, invalid bytes, a
// missing or repeated Host, unknown transfer codings with 501, oversized heads with 431)
// before any phase runs. Hop-by-hop fields (Connection and the fields it names,
// Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade) are removed from requests
// and responses; Expect: 100-continue is answered by the proxy when the body is first read.
// X-Forwarded-For, -Proto and -Host from clients outside [ServiceOptions.TrustedProxies]
// are removed, and the proxy sets its own on the upstream request. Framing fields
// (Content-Length, Transfer-Encoding, Connection) of outgoing messages are written by the
// framework from what it actually sends: a phase that changes a body's length removes
// Content-Length and the body goes chunked. Every field a phase sets is checked, so no
// phase can inject a line break.
//
// # Retries
//
// A failed attempt is retried (UpstreamPeer runs again, so a balancer can pick another
// backend) when the error's Retry field is set after FailToConnect or ErrorWhileProxy, up to
// [ServiceOptions.MaxRetries], and only when that is safe: nothing was sent to the client
// yet, and the request body was not streamed upstream — or it was buffered whole with
// [Session.BufferRequestBody] — and a request that reached the peer has an idempotent
// method or an Idempotency-Key field. Connection failures come with Retry set, and a retry
// to the same peer waits first (10ms, doubling, at most 1s); a pooled connection that
// turns out closed is retried once the same way. Nothing is retried once the service is
// closing: the requests it cuts end with [ErrShutdown].
//
// # Shutdown and long-lived streams
//
// [Service.Shutdown] stops accepting and lets requests finish: HTTP/1.x connections
// close after their response (idle ones at once), HTTP/2 connections get GOAWAY and
// finish their streams; when its context ends, [Service.Close] cuts what is left. A
// WebSocket, a CONNECT tunnel or a gRPC stream may last for hours, so
// [Service.CloseStreams], which a server calls a grace period after the signal to stop
// (as server.StreamCloser), ends them while Shutdown runs, each as its protocol allows:
// a WebSocket gets a close frame with status 1001 (Going Away) both ways, put between
// two frames, and is closed once both sides have answered or after a second; a CONNECT
// tunnel is closed; a gRPC call ends with grpc-status 14 (UNAVAILABLE), in trailers after
// its last whole message or in a trailers-only response if none started (a response
// still inside a message 200ms later, or whose framing carries no trailers, such as an
// HTTP/1.1 one with a Content-Length, is reset or closed instead). Plain HTTP requests
// are left to finish within Shutdown's context.
// Requests ended either way run Logging with an error that wraps [ErrShutdown].
//
// # Upstream connections
//
// Connections to peers are pooled per service, keyed by the peer's identity (network,
// address, TLS settings, group key), in LIFO stacks with an idle timeout and a maximum
// size. Every pooled connection, over TLS or not, is watched for the peer's close (on
// Linux, in an epoll set) and checked before reuse: a request that cannot be resent, or
// one taking a connection idle for a second or more, first peeks at the socket without
// blocking (and under TLS reads through TLS what is waiting, so a close_notify is seen
// and a session ticket handled). What the pool keeps per peer identity (idle
// connections, the TLS session cache, HTTP/2 transports) is dropped once the peer has
// had no connection open for three of its idle timeouts, and when more than
// [ServiceOptions.MaxUpstreamPeers] peers have state, from the least recently used peers
// with no connection open. [Service.PoolStats] counts new and reused connections, idle
// ones and peers.
//
// # TLS
//
// [Service.AddTLS] adds an endpoint that terminates TLS with a configuration from package
// github.com/gotthard-proxy/gotthard/tls (certificates by SNI, reload, mutual TLS); the
// phases see the connection's TLS with [Session.TLS]. [PeerTLS] sets up TLS to a peer.
// docs/tls.md is the guide.
//
// # The PROXY protocol
//
// Behind a TCP load balancer, [ServiceOptions.ProxyProtocol] reads the PROXY protocol
// header (versions 1 and 2) that trusted balancers put before a connection's bytes:
// the client it names is then the connection's client ([Session.ClientAddr],
// X-Forwarded-For, logs). [Peer.ProxyProtocol] sends one to a peer on each new
// connection, with the client's address; such connections are not shared between
// client connections. docs/l4-proxy-protocol.md is the guide.
//
// # Memory
//
// Bodies stream through pooled buffers with backpressure; nothing is buffered whole unless
// a phase asks. An idle keep-alive client connection holds no read or write buffer.
package proxy
