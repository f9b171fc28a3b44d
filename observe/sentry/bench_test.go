package sentry

import (
	"testing"
)

// BenchmarkRequestEnd measures what an Observer costs a request on its path: one
// that is not reported (a 200), one turned away by the rate limit, and the copy a
// reported one makes (it then starts the goroutine that builds the event and hands it
// to the client, off the path: BenchmarkEvent).
func BenchmarkRequestEnd(b *testing.B) {
	b.Run("ok", func(b *testing.B) {
		o, _ := newObserver(b, Options{})
		r := request(200, nil)
		b.ReportAllocs()
		for b.Loop() {
			o.RequestEnd(r)
		}
	})
	b.Run("rate-limited", func(b *testing.B) {
		o, _ := newObserver(b, Options{EventsPerSecond: 1.0 / 3600, Burst: 1})
		r := request(502, errRefused)
		o.RequestEnd(r)
		b.ReportAllocs()
		for b.Loop() {
			o.RequestEnd(r)
		}
	})
	b.Run("capture", func(b *testing.B) {
		// A reported request's own work past the rate limit, but for the go
		// statement: the copy of what the event needs.
		o, _ := newObserver(b, Options{})
		r := request(502, errRefused)
		b.ReportAllocs()
		for b.Loop() {
			o.capture(r)
		}
	})
	b.Run("capture-panic", func(b *testing.B) {
		o, _ := newObserver(b, Options{})
		r := request(500, nil)
		r.Panic, r.Stack = panicking()
		b.ReportAllocs()
		for b.Loop() {
			o.capture(r)
		}
	})
}

// BenchmarkEvent measures building an event off the request's path: a panic's (with
// its stack parsed) and a failure's.
func BenchmarkEvent(b *testing.B) {
	o, _ := newObserver(b, Options{})
	for _, bc := range []struct {
		name string
		rep  *report
	}{
		{"panic", func() *report {
			r := request(500, nil)
			r.Panic, r.Stack = panicking()
			return o.capture(r)
		}()},
		{"failure", o.capture(request(502, errRefused))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.event(bc.rep)
			}
		})
	}
}
