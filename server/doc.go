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
//     graceful_shutdown_timeout_seconds, then background services are canceled.
//   - SIGINT: fast shutdown. Every connection is closed at once.
//   - SIGQUIT: graceful upgrade. Until package upgrade can hand the listening sockets to
//     a new process, it logs so and shuts down gracefully.
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
// [Options.Listen] is where listeners come from; package upgrade will provide one that
// takes them from the old process over upgrade_sock. The Server removes a Unix socket file
// and the pid file on exit only while they are still its own, so a new process that took
// them over keeps them.
package server
