package lb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

// TestFailoverErrorSide: an upstream timeout counts towards ejection and may be
// retried; the same timeout on the client's side counts for nothing and is not
// retried; another upstream error is retried but does not count.
func TestFailoverErrorSide(t *testing.T) {
	timeout := fmt.Errorf("read: %w", os.ErrDeadlineExceeded)
	tests := []struct {
		name      string
		err       error
		upstream  bool
		wantRetry bool
		wantEject bool
	}{
		{"upstream timeout", timeout, true, true, true},
		{"client timeout", timeout, false, false, false},
		{"upstream reset", errors.New("connection reset by peer"), true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lb.New(lb.Options[string]{
				Backends: backends(2),
				Outlier:  lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: time.Hour},
				Attach:   func(b lb.Backend) string { return "peer " + b.Addr },
			})
			if err != nil {
				t.Fatal(err)
			}
			var f lb.Failover[string]
			v, err := f.Select(l, "")
			if err != nil || v != "peer "+f.Addr() {
				t.Fatalf("Select = %q, %v (addr %s)", v, err, f.Addr())
			}
			first := l.Lookup(f.Addr())
			if retry := f.ErrorWhileProxy(tt.err, tt.upstream, true); retry != tt.wantRetry {
				t.Fatalf("retry %v, want %v", retry, tt.wantRetry)
			}
			if first.Ejected() != tt.wantEject || first.InFlight() != 0 {
				t.Fatalf("ejected %v (want %v), in flight %d", first.Ejected(), tt.wantEject, first.InFlight())
			}
			if v2, err := f.Select(l, ""); err != nil || v2 == v {
				t.Fatalf("second Select = %q, %v; want the other backend", v2, err)
			}
			f.Done(200, nil)
			if _, err := f.Select(l, ""); !errors.Is(err, lb.ErrNoBackend) || f.Attempts() != 2 {
				t.Fatalf("third Select: %v after %d attempts, want ErrNoBackend after 2", err, f.Attempts())
			}
		})
	}
}

// TestFailoverDoneLatency: the latency given to DoneLatency becomes the backend's
// PeakEWMA score, instead of the time since Select.
func TestFailoverDoneLatency(t *testing.T) {
	l, err := lb.New(lb.Options[string]{Algorithm: lb.PeakEWMA, Backends: backends(1)})
	if err != nil {
		t.Fatal(err)
	}
	var f lb.Failover[string]
	if _, err := f.Select(l, ""); err != nil {
		t.Fatal(err)
	}
	f.DoneLatency(200, nil, 300*time.Millisecond)
	if got := l.Targets()[0].Latency(); got < 200*time.Millisecond || got > 300*time.Millisecond {
		t.Fatalf("latency score %v, want about 300ms", got)
	}
	if n := l.Targets()[0].InFlight(); n != 0 {
		t.Fatalf("%d in flight after DoneLatency", n)
	}
}

// TestOutcomeOfCanceled: an attempt the proxy cut (its error wraps context.Canceled, as a
// proxy Service's closing does) is Canceled, not the backend's Failure.
func TestOutcomeOfCanceled(t *testing.T) {
	cut := fmt.Errorf("proxy: service closed: %w", context.Canceled)
	if got := lb.OutcomeOf(0, cut); got != lb.Canceled {
		t.Errorf("lb.OutcomeOf(0, %v) = %v, want Canceled", cut, got)
	}
	if got := lb.OutcomeOf(502, cut); got != lb.ServerError {
		t.Errorf("lb.OutcomeOf(502, %v) = %v, want ServerError", cut, got)
	}
}
