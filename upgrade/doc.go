// Package upgrade hands the listening sockets of a running Gotthard program to a new
// one, so that a release replaces the binary without refusing a connection or cutting a
// request. Package server drives it; most programs use it only through the server's
// signals and flags (see docs/upgrade.md).
//
// Two modes share one hand-over:
//
//   - Supervised (Pingora's model, which suits systemd and containers): the operator
//     starts the new binary with -u. It binds upgrade_sock ([Listen], mode 0600) and
//     waits ([Receiver.Accept]). SIGQUIT to the old process makes it connect ([Dial]) and
//     [Send] its listeners.
//   - Re-execution (for programs without a supervisor): SIGUSR2 makes the old process
//     start its own binary again ([Spawn]) with one end of a socket pair inherited as a
//     descriptor; the new process finds it with [Inherited] and reads the hand-over with
//     [Receive].
//
// Either way the old process sends one message of a small versioned format (see
// [Version]) naming each listener's endpoint (network, configured address, TLS or not),
// with the sockets themselves attached as SCM_RIGHTS. The new process checks everything
// it receives: the peer runs as the same user, the message is complete and of this
// version, and every descriptor is a listening stream socket of the family its endpoint
// names. Anything else is refused with the reason, logged, and the new process goes on
// waiting. It then builds its listeners from the sockets ([Handover.Take], matched by
// endpoint), listens afresh for endpoints the old process lacked, closes those its own
// configuration dropped ([Handover.CloseUnused]), starts serving and answers
// ([Handover.Serving]). Only then does the old process stop accepting and drain. The
// kernel's accept queue belongs to the socket, which both processes hold until the old
// one closes its copy, so no connection attempt is refused in between.
//
// A failed hand-over (nobody waits on upgrade_sock, the new process refuses or dies before
// serving, a malformed answer, a time-out) leaves the old process serving as before: it
// only ever sent copies of its descriptors.
//
// Re-execution is ours rather than github.com/cloudflare/tableflip's: tableflip owns the
// process's whole upgrade lifecycle (its own signal wiring, a readiness call, listeners
// created through it by name, environment-encoded descriptor lists), where package
// server already owns signals, readiness, drain and listener creation per endpoint. A
// socket pair inherited as one descriptor lets both modes share the same message, the
// same checks and the same "serving" answer; only how the two processes meet differs.
package upgrade
