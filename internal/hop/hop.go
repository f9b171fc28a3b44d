// Package hop names the header fields that describe one connection only and so never
// cross a proxy (RFC 9110 §7.6.1) nor appear in HTTP/2 (RFC 9113 §8.2.2). It is the one
// list the HTTP/1.x and HTTP/2 sides of the proxy and the HTTP/2 codec share.
package hop

import "github.com/gotthard-proxy/gotthard/internal/ascii"

// Field reports whether name, in any case, is a connection-specific field: Connection,
// Proxy-Connection, Keep-Alive, Transfer-Encoding or Upgrade. TE is not among them: it
// also describes one connection, but HTTP/2 carries it with the value "trailers", so
// each side decides what to do with it (see [TE]).
func Field[T ~string | ~[]byte](name T) bool {
	switch len(name) {
	case 7:
		return ascii.EqualFoldLower(name, "upgrade")
	case 10:
		return ascii.EqualFoldLower(name, "connection") || ascii.EqualFoldLower(name, "keep-alive")
	case 16:
		return ascii.EqualFoldLower(name, "proxy-connection")
	case 17:
		return ascii.EqualFoldLower(name, "transfer-encoding")
	}
	return false
}

// TE reports whether name, in any case, is TE.
func TE[T ~string | ~[]byte](name T) bool { return ascii.EqualFoldLower(name, "te") }
