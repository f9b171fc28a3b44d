package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
)

// stats counts what the clients saw. It is safe for concurrent use.
type stats struct {
	mu      sync.Mutex
	elapsed time.Duration // set once the clients have ended

	wsDials, wsDialRefused, wsDialReset, wsDialError int
	wsOK, wsBad, wsLost, wsUnanswered1001            int
	wsClose1001, wsBroken                            int
	closeCodes                                       map[websocket.StatusCode]int // closes other than 1001

	grpcStreams, grpcMsgs, grpcOutOfOrder int
	grpcMaxGap                            time.Duration
	grpcEnds, grpcOpenFails               map[codes.Code]int

	httpOK, httpNon2xx, httpRefused, httpReset, httpError int
}

func (s *stats) add(n *int, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*n += d
}

// kind sorts a connection error: "refused", "reset" (reset, broken pipe, or closed
// before an answer) or "error".
func kind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	return "error"
}

func (s *stats) wsDialFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind(err) {
	case "refused":
		s.wsDialRefused++
	case "reset":
		s.wsDialReset++
	default:
		s.wsDialError++
	}
}

// wsEnded counts how a WebSocket connection ended with err while it was live, pending
// telling whether a message was waiting for its echo. It reports whether the end was
// a good one: a close 1001, or the run's own end.
func (s *stats) wsEnded(ctx interface{ Err() error }, err error, pending bool) bool {
	if ctx.Err() != nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch code := websocket.CloseStatus(err); code {
	case websocket.StatusGoingAway:
		s.wsClose1001++
		if pending {
			s.wsUnanswered1001++
		}
		return true
	case -1: // no close frame
		s.wsBroken++
	default:
		s.closeCodes[code]++
	}
	if pending {
		s.wsLost++
	}
	return false
}

func (s *stats) grpcOpenFailed(c codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grpcOpenFails[c]++
}

func (s *stats) grpcEnded(c codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grpcEnds[c]++
}

// grpcMessage counts a message received at now, in order or not; last is when the one
// before came, on this stream or the one before (zero for the first).
func (s *stats) grpcMessage(inOrder bool, last, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grpcMsgs++
	if !inOrder {
		s.grpcOutOfOrder++
	}
	if !last.IsZero() {
		s.grpcMaxGap = max(s.grpcMaxGap, now.Sub(last))
	}
}

func (s *stats) httpFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind(err) {
	case "refused":
		s.httpRefused++
	case "reset":
		s.httpReset++
	default:
		s.httpError++
	}
}

func (s *stats) closeOther() int {
	n := 0
	for _, v := range s.closeCodes {
		n += v
	}
	return n
}

func (s *stats) grpcEndOther() int {
	n := 0
	for c, v := range s.grpcEnds {
		if c != codes.Unavailable {
			n += v
		}
	}
	return n
}

func (s *stats) grpcOpenFailedAll() int {
	n := 0
	for _, v := range s.grpcOpenFails {
		n += v
	}
	return n
}

// failures counts everything that is a failure (see the package doc).
func (s *stats) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wsDialRefused + s.wsDialReset + s.wsDialError + s.wsBad + s.wsLost + s.wsBroken +
		s.closeOther() + s.grpcOutOfOrder + s.grpcEndOther() + s.grpcOpenFailedAll() +
		s.httpNon2xx + s.httpRefused + s.httpReset + s.httpError
}

// counts formats a map of counts as "k:v,k:v" sorted by key, or "-" when empty.
func counts[K ~int | ~uint32](m map[K]int, name func(K) string) string {
	if len(m) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", name(k), m[k])
	}
	return b.String()
}

// report writes the counts as key=value lines to kv and in words to human. The keys:
//
//	elapsed_s                 how long the clients ran
//	ws_dials                  WebSocket connections opened
//	ws_dial_refused, ws_dial_reset, ws_dial_error
//	                          connections or handshakes that failed: refused, reset, other
//	ws_msgs_ok                messages echoed as sent
//	ws_msgs_bad               echoes that differ from the message, or came unasked
//	ws_lost_echoes            messages unanswered within -echo-timeout or at a close
//	                          other than 1001
//	ws_close_1001             connections closed by the proxy with 1001 (going away)
//	ws_unanswered_at_1001     messages still unanswered at such a close (not failures)
//	ws_close_other            connections closed with another code
//	ws_close_other_codes      those codes, as code:count,... or -
//	ws_broken                 connections that ended without a close
//	grpc_streams              gRPC streams opened
//	grpc_msgs                 messages received
//	grpc_out_of_order         messages that were not the next of their stream
//	grpc_max_gap_ms           longest time between two messages, across streams
//	grpc_end_unavailable      streams that ended with Unavailable (a drain)
//	grpc_end_other            streams that ended otherwise (before the run's end)
//	grpc_end_other_codes      those codes, as Code:count,... or -
//	grpc_open_failed          streams that could not be opened
//	http_requests             HTTP requests answered 2xx
//	http_non2xx               answered otherwise
//	http_refused, http_reset, http_errors
//	                          requests that failed: refused, reset, other
//	failures                  the sum of every failure above
func (s *stats) report(kv, human io.Writer) {
	failures := s.failures()
	s.mu.Lock()
	defer s.mu.Unlock()
	code := func(c codes.Code) string { return c.String() }
	wsCode := func(c websocket.StatusCode) string { return fmt.Sprint(int(c)) }
	otherEnds := maps.Clone(s.grpcEnds)
	delete(otherEnds, codes.Unavailable)
	grpcOther := counts(otherEnds, code)
	lines := []struct {
		key string
		val any
	}{
		{"elapsed_s", fmt.Sprintf("%.1f", s.elapsed.Seconds())},
		{"ws_dials", s.wsDials},
		{"ws_dial_refused", s.wsDialRefused},
		{"ws_dial_reset", s.wsDialReset},
		{"ws_dial_error", s.wsDialError},
		{"ws_msgs_ok", s.wsOK},
		{"ws_msgs_bad", s.wsBad},
		{"ws_lost_echoes", s.wsLost},
		{"ws_close_1001", s.wsClose1001},
		{"ws_unanswered_at_1001", s.wsUnanswered1001},
		{"ws_close_other", s.closeOther()},
		{"ws_close_other_codes", counts(s.closeCodes, wsCode)},
		{"ws_broken", s.wsBroken},
		{"grpc_streams", s.grpcStreams},
		{"grpc_msgs", s.grpcMsgs},
		{"grpc_out_of_order", s.grpcOutOfOrder},
		{"grpc_max_gap_ms", s.grpcMaxGap.Milliseconds()},
		{"grpc_end_unavailable", s.grpcEnds[codes.Unavailable]},
		{"grpc_end_other", s.grpcEndOther()},
		{"grpc_end_other_codes", grpcOther},
		{"grpc_open_failed", s.grpcOpenFailedAll()},
		{"http_requests", s.httpOK},
		{"http_non2xx", s.httpNon2xx},
		{"http_refused", s.httpRefused},
		{"http_reset", s.httpReset},
		{"http_errors", s.httpError},
		{"failures", failures},
	}
	for _, l := range lines {
		fmt.Fprintf(kv, "%s=%v\n", l.key, l.val)
	}
	fmt.Fprintf(human, "upgradeload: %.1fs\n", s.elapsed.Seconds())
	fmt.Fprintf(human, "  WebSocket: %d connections opened (%d refused, %d reset, %d failed); %d messages echoed, %d wrong, %d lost\n",
		s.wsDials, s.wsDialRefused, s.wsDialReset, s.wsDialError, s.wsOK, s.wsBad, s.wsLost)
	fmt.Fprintf(human, "             closed by the proxy: %d with 1001 (%d with a message unanswered), %d otherwise (%s), %d without a close\n",
		s.wsClose1001, s.wsUnanswered1001, s.closeOther(), counts(s.closeCodes, wsCode), s.wsBroken)
	fmt.Fprintf(human, "  gRPC: %d streams, %d messages (%d out of order, longest gap %v); ended with Unavailable %d, otherwise %d (%s); %d failed to open (%s)\n",
		s.grpcStreams, s.grpcMsgs, s.grpcOutOfOrder, s.grpcMaxGap.Round(time.Millisecond), s.grpcEnds[codes.Unavailable], s.grpcEndOther(),
		grpcOther, s.grpcOpenFailedAll(), counts(s.grpcOpenFails, code))
	fmt.Fprintf(human, "  HTTP: %d answered 2xx, %d otherwise; %d refused, %d reset, %d failed\n",
		s.httpOK, s.httpNon2xx, s.httpRefused, s.httpReset, s.httpError)
	fmt.Fprintf(human, "  failures: %d\n", failures)
}
