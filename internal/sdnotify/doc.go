// Package sdnotify tells systemd about the service's state with the sd_notify protocol:
// one datagram of newline-separated KEY=VALUE lines to the Unix socket named by
// $NOTIFY_SOCKET (a path, or an abstract name when it starts with '@'). Without that
// variable every call does nothing, so a program run outside systemd pays nothing.
package sdnotify
