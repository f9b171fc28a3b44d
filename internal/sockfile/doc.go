// Package sockfile manages the files of Unix sockets that a process listens on: it
// removes a stale one left by a process that died, refusing to touch a file that is not
// a socket or that another process still serves, and removes a socket's file at exit
// only if it is still the one the process created (a newer process may have replaced
// it, or taken it over in a graceful upgrade).
package sockfile
