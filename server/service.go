package server

import (
	"context"
	"net"
)

// Service is anything a [Server] runs. A value passed to [Server.Add] must also implement
// [ListeningService] or [BackgroundService]; which one decides how the Server drives it.
type Service interface {
	// Name identifies the service in logs and in [Server.Addrs]. It must be unique within
	// one Server and must not be empty.
	Name() string
}

// Endpoint is an address a [ListeningService] wants to accept connections on.
type Endpoint struct {
	// Network is "tcp", "tcp4", "tcp6" or "unix".
	Network string
	// Address is a host:port for TCP ("127.0.0.1:6188", "[::1]:0", ":0") or a file
	// system path for a Unix socket ("/run/gw.sock").
	Address string
	// TLS reports whether the service terminates TLS on this endpoint, as the address
	// from [ListeningService.Endpoints] says with a TLS() bool method (a proxy's do). A
	// graceful upgrade hands it to the new process with the socket, for its logs.
	TLS bool
}

// Addr returns e as a net.Addr, as [ListeningService.Endpoints] lists it.
func (e Endpoint) Addr() net.Addr { return endpointAddr{e.Network, e.Address} }

type endpointAddr struct{ network, address string }

func (a endpointAddr) Network() string { return a.network }
func (a endpointAddr) String() string  { return a.address }

// String returns "network:address", the form used in logs.
func (e Endpoint) String() string { return e.Network + ":" + e.Address }

// ListeningService accepts connections on listeners that the [Server] creates (or, in a
// binary upgrade, inherits from the old process) and hands to it.
//
// The Server calls Endpoints once, before Serve; it calls Serve once, in a goroutine of its
// own; and it may call Shutdown and Close from other goroutines while Serve runs, so those
// two must be safe for concurrent use with Serve.
type ListeningService interface {
	Service
	// Endpoints lists the addresses to accept on; the Server creates one listener for
	// each. Each address's Network is "tcp", "tcp4", "tcp6" or "unix" and its String is
	// the address to listen on ("127.0.0.1:6188", "/run/gw.sock"). The type is net.Addr
	// so that services need not import this package; [Endpoint.Addr] converts.
	Endpoints() []net.Addr
	// Serve accepts on lns (one per endpoint, same order) and serves until Shutdown or
	// Close; it then returns nil. Any other return is a failure of the service. Serve owns
	// the listeners from here on and closes them on Shutdown or Close.
	Serve(lns []net.Listener) error
	// Shutdown stops accepting, lets in-flight requests finish and closes idle
	// connections. When ctx ends first it closes the remaining connections and returns
	// ctx.Err().
	Shutdown(ctx context.Context) error
	// Close closes the listeners and all connections at once.
	Close() error
}

// StreamCloser is implemented by listening services whose connections may carry
// long-lived streams that a graceful shutdown would otherwise wait on until its timeout:
// WebSocket and CONNECT tunnels, gRPC streams. Once the grace period
// (Config.GracePeriodSeconds, counted from the signal) has passed in a graceful shutdown
// or upgrade, the [Server] calls CloseStreams on every service that has it, after or
// concurrently with Shutdown. The service ends such streams the way their protocol says
// (a proxy sends WebSocket clients a 1001 Going Away close frame and ends gRPC calls with
// UNAVAILABLE) so that clients reconnect, to the new process in an upgrade.
type StreamCloser interface {
	CloseStreams()
}

// BackgroundService is a task that runs alongside the listening services for the life of
// the [Server]: health checks, service discovery, cache purging.
type BackgroundService interface {
	Service
	// Run works until ctx is canceled and then returns promptly. A return of nil or of
	// ctx's error after cancellation is a normal stop; a non-nil error before it is a
	// failure that shuts the Server down.
	Run(ctx context.Context) error
}

// Checker is implemented by services that can check their own settings without serving:
// files they will read, options, anything that would otherwise only fail once the
// service runs. A *proxy.Service implements it. In test mode ([Options.Test], the -t
// flag) [Server.Run] calls Check on every added service that has it, in the order they
// were added, instead of running them. A normal Run does not call Check: a service checks
// what it must when it starts serving, and a problem -t reports as a warning sign (a
// certificate past its date, say) should not keep a restarted process from serving.
//
// Check must not listen, connect or change what the service will do when it runs; it
// may read files. Its error should describe the problem without repeating the service's
// name, which the Server adds.
type Checker interface {
	Check() error
}
