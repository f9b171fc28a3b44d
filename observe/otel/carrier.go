package otel

import (
	"strings"

	"go.opentelemetry.io/otel/propagation"

	"github.com/gotthard-proxy/gotthard/observe"
)

// HeaderCarrier adapts an [observe.Header] to propagation.TextMapCarrier, so a
// propagator can read a request's trace context from it or write one into it. Use a
// pointer to it: a *HeaderCarrier is converted to the interface without an allocation,
// and one carrier can be reused for one header after another by changing Header.
//
// A HeaderCarrier is as safe for concurrent use as its Header: an observe.Header seen
// by an observer is not.
type HeaderCarrier struct {
	// Header is the header read and written; a nil Header reads as empty and ignores
	// writes.
	Header observe.Header
}

var _ propagation.TextMapCarrier = (*HeaderCarrier)(nil)

// Get returns the value of the first field named key (without regard to case), or "".
func (c *HeaderCarrier) Get(key string) string {
	if c.Header == nil {
		return ""
	}
	return c.Header.Get(key)
}

// Set replaces the fields named key with one field of that name and value.
func (c *HeaderCarrier) Set(key, value string) {
	if c.Header == nil {
		return
	}
	c.Header.Set(key, value)
}

// Keys returns the names of the header's fields, each once (the first spelling seen),
// in order. Unlike Get and Set it allocates.
func (c *HeaderCarrier) Keys() []string {
	if c.Header == nil {
		return nil
	}
	var keys []string
	c.Header.Range(func(name, _ string) bool {
		for _, k := range keys {
			if strings.EqualFold(k, name) {
				return true
			}
		}
		keys = append(keys, name)
		return true
	})
	return keys
}
