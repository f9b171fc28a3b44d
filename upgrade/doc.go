// Package upgrade will carry out zero-downtime binary upgrades: a new version of a
// Gotthard program takes over the listening sockets of the running one, so no connection
// attempt is refused and no in-flight request is cut during a release. It provides no API
// yet; this comment records the design the server package is built for.
//
// The model is Pingora's, which works under systemd and in containers because the new
// process is started by the operator rather than forked by the old one:
//
//  1. Both processes agree on a Unix socket path, upgrade_sock in the configuration
//     (server.Config.UpgradeSock).
//  2. The operator starts the new binary with -u (--upgrade). Instead of listening, it
//     binds upgrade_sock and waits for the old process to connect. The server package
//     already has the seam: server.Options.Upgrade is set by -u, and
//     server.Options.Listen is the function this package will supply to return the
//     inherited listener for each endpoint (matched by network and address).
//  3. The operator sends SIGQUIT to the old process. It connects to upgrade_sock and
//     sends its listening file descriptors with SCM_RIGHTS, together with the endpoint
//     each one serves, then keeps accepting for grace_period_seconds so the new process
//     can initialize, and drains as in a graceful shutdown (bounded by
//     graceful_shutdown_timeout_seconds).
//  4. The new process builds net.Listeners from the received descriptors (net.FileListener)
//     and serves; the kernel queue of each socket is shared, so no connection is lost.
//     It writes its pid to pid_file; the old process leaves a pid file and Unix socket
//     files it no longer owns in place.
//
// Until this package is written, SIGQUIT makes the server shut down gracefully and -u
// starts a process that listens afresh, logging that nothing was inherited.
// github.com/cloudflare/tableflip (inherited descriptors across a re-exec) may later serve
// as a second mode for programs not run under a supervisor.
package upgrade
