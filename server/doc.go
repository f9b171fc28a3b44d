// Package server runs a Gotthard program's services with one lifecycle: listening
// services (proxies, admin endpoints) on TCP or Unix sockets, and background services
// (health checks, service discovery) beside them.
//
// A [Server] creates one listener per [Endpoint] of each [ListeningService] and hands them
// to its Serve method; it runs each [BackgroundService] with a context. It handles the
// signals an operator sends, as Pingora and nginx do:
//
//   - SIGTERM: graceful shutdown. Listeners stop accepting (after
//     grace_period_seconds), in-flight requests finish within
//     graceful_shutdown_timeout_seconds, long-lived streams are closed once the grace
//     period is over ([StreamCloser]), then background services are canceled.
//   - SIGINT: fast shutdown. Every connection is closed at once.
//   - SIGQUIT: graceful upgrade (Pingora's): the listening sockets go to a new process
//     started with -u and waiting on upgrade_sock; once it serves, this one drains as in
//     a graceful shutdown and exits.
//   - SIGUSR2: graceful upgrade by re-execution: the process starts its own executable
//     again and hands it the listening sockets, then drains and exits.
//   - A second signal during a graceful shutdown makes it fast.
//
// Configuration comes from a YAML file with Pingora's keys ([LoadConfig], [Config]) and
// from the command line (-c/--conf, -d/--daemon, -u/--upgrade, -t/--test; see
// [ParseFlags] and [NewFromArgs]). Fields set in code through [Options] are the base the
// file overrides. The same file may hold the application's own keys: set [Options.App]
// to a pointer to the application's struct, and a key that neither knows is an error
// with its line.
//
// With -t ([Options.Test]) the program builds and adds its services as usual, so their
// files are read, and [Server.Run] then calls the Check method of each service that
// implements [Checker] (a proxy service does) and returns [ErrConfigTested] or the
// problems found, without listening.
//
// Proxies from package proxy are listening services by their method set; this package
// does not import them. A program that serves plain net/http handlers and does not need
// the lifecycle, daemon mode or upgrades can use net/http's Server directly.
//
// A minimal main:
//
//	func main() {
//		srv, err := server.NewFromArgs(os.Args[1:], server.Options{})
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := srv.Add(myProxy); err != nil { // a ListeningService
//			log.Fatal(err)
//		}
//		err = srv.Run()
//		if errors.Is(err, server.ErrConfigTested) { // -t: checked, nothing served
//			fmt.Println("configuration OK")
//			return
//		}
//		if err != nil {
//			log.Fatal(err)
//		}
//	}
//
// # Daemon mode
//
// Go cannot fork a running program, so daemon mode (daemon: true or -d) re-executes the
// binary with the same arguments minus -d, in a new session, with standard input from
// /dev/null and standard output and error appended to error_log. The original process's
// Run returns nil as soon as the copy has started. The copy keeps the working directory,
// so relative paths in the configuration still resolve.
//
// # Upgrades
//
// A new release replaces the running process without refusing a connection: the
// listening sockets themselves (TCP, Unix, those that serve TLS) pass to the new process,
// so the kernel's accept queues never close. Two ways start it, sharing one hand-over
// path (package upgrade):
//
//   - Pingora's, for a supervisor or an operator that starts the new binary: start it
//     with -u ([Options.Upgrade]); it binds upgrade_sock (mode 0600) and waits up to
//     upgrade_timeout_seconds. Send the running process SIGQUIT ([Server.HandOver]): it
//     connects and sends every listening socket with the endpoint it serves.
//   - Re-execution, for programs without a supervisor: send the running process SIGUSR2
//     ([Server.Reexec]); it starts its own executable (a binary replaced on disk is the
//     new one) with the same arguments, the hand-over socket inherited.
//
// The new process takes each endpoint's socket by the address configured for it (or
// the address the old socket is bound to), listens afresh on endpoints the old process
// lacked, closes those the new configuration dropped, starts its services, writes the
// pid file and then answers that it serves. Only then does the old process stop
// accepting and drain: in-flight requests finish, long-lived streams get what is left of
// grace_period_seconds (counted from the signal), all within
// graceful_shutdown_timeout_seconds. The whole hand-over is bounded by
// upgrade_timeout_seconds; if it fails (no new process, a bad message, a new process
// that cannot listen or dies first), the old process logs one line ("upgrade failed;
// still serving") and serves on as before.
//
// Under systemd (Type=notify) the Server sends READY=1 with MAINPID= once it serves,
// RELOADING=1 when a hand-over starts (READY=1 again if it fails) and STOPPING=1 when
// it shuts down; the new process's MAINPID= makes systemd follow it. docs/upgrade.md
// has a unit file and a container recipe.
//
// The Server removes a Unix socket file and the pid file on exit only while they are
// still its own, so a new process that took them over keeps them.
package server
