package otel

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// methodName returns the span name for method: the method itself if the semantic
// conventions know it, "HTTP" otherwise. The names are constants, so a span does not
// keep the request's memory by its name.
func methodName(method string) (name string, known bool) {
	switch method {
	case "GET":
		return "GET", true
	case "HEAD":
		return "HEAD", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "DELETE":
		return "DELETE", true
	case "CONNECT":
		return "CONNECT", true
	case "OPTIONS":
		return "OPTIONS", true
	case "TRACE":
		return "TRACE", true
	case "PATCH":
		return "PATCH", true
	case "QUERY":
		return "QUERY", true
	}
	return "HTTP", false
}

// methodAttr returns http.request.method for method: "_OTHER" for a method the
// semantic conventions do not know.
func methodAttr(method string, known bool) attribute.KeyValue {
	if !known {
		return semconv.HTTPRequestMethodOther
	}
	name, _ := methodName(method)
	return semconv.HTTPRequestMethodKey.String(name)
}

// splitTarget splits a request-target into its path and its query.
func splitTarget(target string) (path, query string) {
	path, query, _ = strings.Cut(target, "?")
	return path, query
}

// splitHostPort splits "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6
// address into the host (without brackets) and the port, 0 if none or not a number.
func splitHostPort(s string) (host string, port int) {
	if s == "" {
		return "", 0
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, 0
		}
		host, rest := s[1:end], s[end+1:]
		if len(rest) > 1 && rest[0] == ':' {
			port = atoiPort(rest[1:])
		}
		return host, port
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.IndexByte(s, ':') != i { // no port, or a bare IPv6 address
		return s, 0
	}
	if p := atoiPort(s[i+1:]); p != 0 {
		return s[:i], p
	}
	return s[:i], 0
}

// atoiPort parses a port number, 0 if s is not one.
func atoiPort(s string) int {
	if s == "" || len(s) > 5 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0
	}
	return n
}

// defaultPort is the port a URL of scheme means without one.
func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// protoVersion returns network.protocol.version for an "HTTP/x" protocol name.
func protoVersion(proto string) string {
	v, ok := strings.CutPrefix(proto, "HTTP/")
	if !ok {
		return ""
	}
	return v
}

// isUnix reports whether a peer address is a Unix socket's path (or an abstract
// socket's name).
func isUnix(peer string) bool {
	return strings.HasPrefix(peer, "/") || strings.HasPrefix(peer, "@")
}

// errorType returns error.type for a proxy error's kind, "_OTHER" without one.
func errorType(kind string) attribute.KeyValue {
	if kind == "" {
		return semconv.ErrorTypeOther
	}
	return semconv.ErrorTypeKey.String(kind)
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rpcMethodOther is rpc.method for a method the instrumentation cannot tell is defined.
var rpcMethodOther = semconv.RPCMethodKey.String("_OTHER")

// grpcCodeName returns the name of a gRPC status code, as gRPC's documentation and
// rpc.response.status_code write it: "OK", "UNAVAILABLE"; the number for one outside
// the 17 codes.
func grpcCodeName(code int) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if code >= 0 && code < len(names) {
		return names[code]
	}
	return strconv.Itoa(code)
}

// grpcServerError reports whether a gRPC status code is a server's error by the
// semantic conventions for gRPC servers.
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15: // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
		return true
	}
	return false
}
