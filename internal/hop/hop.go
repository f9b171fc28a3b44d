// Package hop names the header fields that describe one connection only and so never
// cross a proxy (RFC 9110 §7.6.1) nor appear in HTTP/2 (RFC 9113 §8.2.2). It is the one
// list the HTTP/1.x and HTTP/2 sides of the proxy and the HTTP/2 codec share.
package hop

// Field reports whether name, in any case, is a connection-specific field: Connection,
// Proxy-Connection, Keep-Alive, Transfer-Encoding or Upgrade. TE is not among them: it
// also describes one connection, but HTTP/2 carries it with the value "trailers", so
// each side decides what to do with it (see [TE]).
func Field[T ~string | ~[]byte](name T) bool {
	switch len(name) {
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	}
	return false
}

// TE reports whether name, in any case, is TE.
func TE[T ~string | ~[]byte](name T) bool { return equalFold(name, "te") }

// equalFold reports whether s equals lower (which is in lower case) but for ASCII case.
func equalFold[T ~string | ~[]byte](s T, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
