// Package syslog is an slog.Handler that writes RFC 5424 syslog messages to a local
// syslog daemon or a remote receiver.
//
// Each record becomes one message:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
//	<30>1 2026-12-06T21:04:05.123456Z edge1 gateway 4711 - [gotthard@32473 peer="10.0.0.7:8080" status="502"] upstream failed
//
// PRI combines [Options.Facility] (daemon by default) with the severity of the
// record's level: Debug is 7, Info 6, Warn 4, Error 3, with the levels in between and
// above mapped as [Handler.Handle] says. TIMESTAMP is RFC 3339 with
// microseconds ("-" for a record without a time). HOSTNAME, APP-NAME and PROCID default
// to the host name, the program name and the process ID, made to fit the RFC's
// character set and lengths. Attributes go into one SD-ELEMENT whose SD-ID is
// [Options.SDID] (keys of groups joined with dots, values escaped as the RFC says), or,
// with [Text], after the message as key=value text. MSG is UTF-8, without a byte order
// mark unless [Options.BOM] asks for one.
//
// # Transports
//
// "unixgram" (the default, /dev/log) and "udp" (RFC 5426) send one datagram per
// record, truncated to [Options.MaxDatagramSize]. "unix" and "tcp" are streams framed
// with RFC 6587 octet counting (MSG-LEN SP SYSLOG-MSG), which rsyslog (imtcp,
// imptcp) and syslog-ng (syslog() source) read; "tcp+tls" is the same over TLS (RFC
// 5425), configured by [Options.TLSConfig]. With Network left empty, a
// socket that turns out to be a stream socket (as some syslog-ng setups make
// /dev/log) is written as "unix".
//
// # Failures
//
// A log call never waits longer than [Options.WriteTimeout] (1s by default): for the
// connection, to connect, to write. A record that cannot be written in time, or while
// the receiver is away, is dropped and counted ([Handler.Dropped]); the handler never
// panics and never blocks its caller for good. A failed write closes the connection;
// the next record reconnects, and failed attempts back off from 100ms up to
// [Options.MaxBackoff], dropping records meanwhile. On stream transports the handler
// checks, before each write, that the receiver has not closed the connection, so that
// a record is not written into a connection the receiver has left, where it would be
// lost without being counted (on Linux, where a socket can be looked at without
// reading; elsewhere the closed connection shows at the write after). Over UDP a record
// lost on the way is not seen.
//
// # Use
//
// One Handler serves the whole program; it is safe for concurrent use, and one lock
// around the connection orders the writes (formatting happens outside it):
//
//	h, err := syslog.New(syslog.Options{Network: "udp", Addr: "127.0.0.1:514", AppName: "gateway"})
//	if err != nil {
//		return err
//	}
//	defer h.Close()
//	logger := slog.New(h)
//	srv, err := server.New(server.Options{Logger: logger})
//	...
//	svc, err := proxy.NewService("gateway", app, proxy.ServiceOptions{Logger: logger})
//
// To log to syslog and to standard error at once, give slog a handler that calls both
// (slog.NewMultiHandler).
//
// When not to use it: under systemd, a program that logs to standard error is already
// in the journal, with levels if the lines start with "<N>" (sd-daemon(3)); send to
// syslog when the logs must reach a syslog pipeline or a remote receiver.
package syslog
