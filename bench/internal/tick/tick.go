// Package tick is the gRPC service shared by the upgrade benchmark's origin
// (bench/upgradeorigin) and load client (bench/upgradeload), written by hand so that
// it needs no generated code: one server-streaming method, [Method], whose request is
// empty and whose responses are the text "tick N" (N from 1), one every interval until
// the client cancels. Messages are raw bytes, carried by [Codec].
package tick

import "fmt"

// Service is the gRPC service name.
const Service = "gotthard.bench.Ticker"

// Method is the full name of the server-streaming method, as a client calls it.
const Method = "/" + Service + "/Ticks"

// StreamName is [Method]'s name within [Service].
const StreamName = "Ticks"

// Codec carries gRPC messages as raw bytes: Marshal takes a []byte or *[]byte and
// Unmarshal fills a *[]byte. Its name makes the content type application/grpc+raw. It
// has no state and is safe for concurrent use.
type Codec struct{}

// Marshal returns the bytes v holds.
func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("tick: cannot marshal a %T", v)
}

// Unmarshal copies data into v, a *[]byte.
func (Codec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("tick: cannot unmarshal into a %T", v)
	}
	*m = append((*m)[:0], data...)
	return nil
}

// Name returns "raw", the content subtype.
func (Codec) Name() string { return "raw" }
