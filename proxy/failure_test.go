package proxy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// recProxy is a test proxy whose phases are set per test and whose Logging phase
// records what it saw.
type recProxy struct {
	Phases[*testCtx]
	peer          func(s *Session) (*Peer, error)
	requestFilter func(s *Session) (Result, error)
	failToConnect func(e *Error) *Error
	errorWhile    func(e *Error) *Error
	failToProxy   func(s *Session, e *Error) int
	log           *logRecorder
}

// logRecord is what the Logging phase saw of one request.
type logRecord struct {
	err        error
	status     int
	bytesSent  int64
	retries    int
	respWriten bool
}

// logRecorder collects the Logging phase's records.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
	ch   chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan struct{}, 100)} }

// wait returns the record of the next request to end, waiting for it.
func (l *logRecorder) wait(t *testing.T, n int) logRecord {
	t.Helper()
	for {
		l.mu.Lock()
		if len(l.recs) > n {
			r := l.recs[n]
			l.mu.Unlock()
			return r
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-t.Context().Done():
			t.Fatal("no Logging record")
		}
	}
}

func (recProxy) NewCtx() *testCtx { return &testCtx{} }

func (p *recProxy) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	return p.peer(s)
}

func (p *recProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.requestFilter != nil {
		return p.requestFilter(s)
	}
	return Continue, nil
}

func (p *recProxy) FailToConnect(_ context.Context, _ *Session, _ *testCtx, _ *Peer, e *Error) *Error {
	if p.failToConnect != nil {
		return p.failToConnect(e)
	}
	return e
}

func (p *recProxy) ErrorWhileProxy(_ context.Context, _ *Session, _ *testCtx, _ *Peer, e *Error, _ bool) *Error {
	if p.errorWhile != nil {
		return p.errorWhile(e)
	}
	return e
}

func (p *recProxy) FailToProxy(_ context.Context, s *Session, _ *testCtx, e *Error) int {
	if p.failToProxy != nil {
		return p.failToProxy(s, e)
	}
	return 0
}

func (p *recProxy) Logging(_ context.Context, s *Session, _ *testCtx, err error) {
	if p.log == nil {
		return
	}
	p.log.mu.Lock()
	p.log.recs = append(p.log.recs, logRecord{err: err, status: s.Status(), bytesSent: s.BytesSent(),
		retries: s.Retries(), respWriten: s.ResponseWritten()})
	p.log.mu.Unlock()
	p.log.ch <- struct{}{}
}

// ErrBodyTooLarge is a sentinel no phase can change: a phase that changes the error it
// gets changes that request's error only.
func TestBodyTooLargeNotShared(t *testing.T) {
	rec := newLogRecorder()
	var mutated atomic.Bool
	app := &recProxy{
		peer: func(*Session) (*Peer, error) { return NewPeer("127.0.0.1:1"), nil },
		requestFilter: func(s *Session) (Result, error) {
			_, err := s.BufferRequestBody(4)
			return Continue, err
		},
		failToProxy: func(_ *Session, e *Error) int {
			if !mutated.Swap(true) {
				e.Status = 418 // this request's error only
				e.Retry = true
			}
			return 0
		},
		log: rec,
	}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	for i, want := range []string{"418", "413"} {
		got := rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
		if !strings.HasPrefix(got, "HTTP/1.1 "+want+" ") {
			t.Fatalf("request %d: got %q", i, got)
		}
		r := rec.wait(t, i)
		if !errors.Is(r.err, ErrBodyTooLarge) {
			t.Fatalf("request %d: Logging got %v, want ErrBodyTooLarge", i, r.err)
		}
	}
	var e *Error
	if errors.As(ErrBodyTooLarge, &e) {
		t.Fatalf("ErrBodyTooLarge is a mutable *Error: %v", e)
	}
}
