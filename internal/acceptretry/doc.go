// Package acceptretry is what the services do when a listener's Accept fails: the one
// policy of the HTTP proxy's and the TCP service's accept loops, and of the UDP
// service's loops that read its listening sockets.
//
// A listener that was closed (net.ErrClosed: the service is stopping, or something
// closed it under the service) ends the loop. Any other error is taken as passing:
// the loop waits and accepts again, backing off from 5 ms to at most a second while the
// errors go on, and starts from 5 ms again after an accept that succeeds. Running out
// of descriptors (EMFILE, ENFILE) or of kernel memory (ENOBUFS, ENOMEM) passes once
// connections close; ending the loop there would leave a process that looks alive
// and never accepts on that address again. nginx likewise goes on accepting after such
// errors, pausing its accepts for a while after running out of descriptors.
//
// [Backoff] is the policy for a loop of one's own ([Backoff.Retry] its step in an
// accept loop; [Backoff.Next] and [Wait] for a loop that logs in its own way, as the
// UDP service does); [Listener] puts it inside a listener's Accept, for a server that
// runs its own loop (net/http's).
package acceptretry
