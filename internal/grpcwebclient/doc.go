// Package grpcwebclient makes gRPC-web calls as a browser library (grpc-web, Connect)
// does, with net/http: for the tests of the proxy's gRPC-web bridge and for
// examples/grpc's demo. It is not a general gRPC-web client: it sends one message and
// reads the whole response, and it checks the response strictly.
//
// The protocol (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md): the
// request is a POST of Content-Type application/grpc-web (or application/grpc-web-text,
// the same bytes in base64), whose body is the messages in gRPC's framing: a flag byte
// (0), a 4-byte big-endian length, the message. The response body holds the messages in
// the same framing, then a last frame of flag 0x80 that carries the trailers
// (grpc-status, grpc-message, ...) as "name: value\r\n" lines with lower-case names,
// since a browser cannot read HTTP trailers. A call that fails before any message may
// instead get a "trailers-only" response: no body, the status in the response head.
package grpcwebclient
