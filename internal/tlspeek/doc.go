// Package tlspeek reads a TLS ClientHello without consuming it, for routing a TLS
// connection by its server name (SNI) or ALPN list without terminating TLS.
//
// [Peek] reads the first TLS records of a connection until they hold the whole
// ClientHello handshake message, parses what routing needs into a [Hello], and returns a
// net.Conn that yields every byte it read again, unchanged, before the rest of the
// connection. The connection can then be handed to an upstream (which sees the client's
// exact bytes) or to a crypto/tls server. [Parse] does the same for a caller that already
// holds the bytes.
//
// Both follow the record layer of RFC 8446 section 5.1 (and RFC 5246 section 6.2): a
// hello may be split over any number of reads and fragmented over several handshake
// records, as a hello larger than one record (16 KiB) must be; a record of another type
// before the hello is complete, an empty or oversized record, or a record that carries
// bytes after the hello is malformed. The hello itself is parsed as crypto/tls parses
// it: a hello that crypto/tls accepts yields the same server name and ALPN list here,
// save that the server name must also be printable ASCII of at most 255 bytes and is
// returned in lower case.
//
// Every size is bounded by the caller's maxBytes and every wait by its timeout; a
// connection whose first byte is not a TLS handshake record is told apart at once with
// [ErrNotTLS], so a listener may fall back to plain TCP for it.
//
// Do not use it where TLS is terminated anyway: crypto/tls's GetConfigForClient sees the
// same fields at no extra cost. It does not read SSL 2.0 compatible hellos, and with
// Encrypted Client Hello the server name it reads is the outer, public one.
//
// In the goroutine that serves one accepted connection c:
//
//	hello, conn, err := tlspeek.Peek(c, 0, 5*time.Second)
//	if err != nil {
//		c.Close()
//		return
//	}
//	backend := routes[hello.ServerName] // then copy conn to and from backend
package tlspeek
