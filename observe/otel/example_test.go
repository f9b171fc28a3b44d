package otel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
)

// Spans written as JSON by the SDK's stdout exporter. A program gives the observer to
// its service (proxy.ServiceOptions{Observers: []observe.Observer{obs}}), which calls
// its methods; here they are called by hand, as the service would for one request.
func Example() {
	var out bytes.Buffer // os.Stdout in a program
	exp, err := stdouttrace.New(stdouttrace.WithWriter(&out), stdouttrace.WithoutTimestamps())
	if err != nil {
		panic(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)) // WithBatcher in production
	defer tp.Shutdown(context.Background())

	obs, err := otel.New(otel.Options{
		TracerProvider: tp,
		Route:          func(*observe.Request) string { return "/users/{id}" },
	})
	if err != nil {
		panic(err)
	}

	in := new(message.Header)
	in.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	now := time.Now()
	r := &observe.Request{Proto: "HTTP/1.1", Scheme: "http", Method: "GET", Target: "/users/7",
		Host: "example.com", Client: "192.0.2.7", Header: in, Start: now}
	obs.RequestStart(r)
	a := &observe.Attempt{Peer: "10.0.0.7:8080", Start: now}
	obs.AttemptStart(r, a)
	up := new(message.Header) // the upstream request's header
	obs.UpstreamRequest(r, a, up)
	a.End, a.Status = time.Now(), 200
	obs.AttemptEnd(r, a)
	r.End, r.Status = time.Now(), 200
	obs.RequestEnd(r)

	dec := json.NewDecoder(&out)
	for dec.More() {
		var span struct {
			Name        string
			SpanKind    int
			SpanContext struct{ TraceID, SpanID string }
			Parent      struct{ SpanID string }
		}
		if err := dec.Decode(&span); err != nil {
			panic(err)
		}
		fmt.Printf("%s (kind %d) in trace %s\n", span.Name, span.SpanKind, span.SpanContext.TraceID)
		if span.SpanKind == 3 {
			fmt.Println("  traceparent sent upstream names it:", up.Get("traceparent")[36:52] == span.SpanContext.SpanID)
		} else {
			fmt.Println("  child of the client's span:", span.Parent.SpanID == "00f067aa0ba902b7")
		}
	}
	// Output:
	// GET (kind 3) in trace 4bf92f3577b34da6a3ce929d0e0e4736
	//   traceparent sent upstream names it: true
	// GET /users/{id} (kind 2) in trace 4bf92f3577b34da6a3ce929d0e0e4736
	//   child of the client's span: true
}
