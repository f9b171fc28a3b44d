package lb_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

func TestHealthCheck(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "status: serving")
		case "/host":
			io.WriteString(w, r.Host+" "+r.Method)
		default:
			w.WriteHeader(503)
		}
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	addr := strings.TrimPrefix(plain.URL, "http://")
	taddr := strings.TrimPrefix(secure.URL, "https://")
	tlsConf := &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"}
	tests := []struct {
		name    string
		hc      lb.HealthCheck
		addr    string
		wantErr bool
		failed  bool // the error wraps ErrCheckFailed
	}{
		{"tcp", lb.HealthCheck{}, addr, false, false},
		{"tcp refused", lb.HealthCheck{}, "127.0.0.1:1", true, false},
		{"http ok", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/ok"}}, addr, false, false},
		{"http 503", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/bad"}}, addr, true, true},
		{"expect status", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/bad", ExpectStatus: 503}}, addr, false, false},
		{"body match", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/ok", BodyContains: "serving"}}, addr, false, false},
		{"body mismatch", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/ok", BodyContains: "draining"}}, addr, true, true},
		{"host and method", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/host", Method: "HEAD", Host: "svc.internal"}}, addr, false, false},
		{"host in body", lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/host", Host: "svc.internal", BodyContains: "svc.internal GET"}}, addr, false, false},
		{"tls", lb.HealthCheck{TLS: tlsConf, HTTP: &lb.HTTPCheck{Path: "/ok", BodyContains: "serving"}}, taddr, false, false},
		{"tls untrusted", lb.HealthCheck{TLS: &tls.Config{}, HTTP: &lb.HTTPCheck{Path: "/ok"}}, taddr, true, false},
		{"tls tcp only", lb.HealthCheck{TLS: tlsConf}, taddr, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.hc.Check(context.Background(), tt.addr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, lb.ErrCheckFailed) != tt.failed {
				t.Fatalf("err = %v, ErrCheckFailed %v", err, tt.failed)
			}
		})
	}
}

// TestRetryBudget checks the budget's arithmetic on synctest's clock.
func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := lb.NewRetryBudget(lb.RetryBudgetOptions{Ratio: 0.2, MinPerSecond: 1, Window: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			b.Request()
		}
		// 10 (1/s over 10s) + 20% of 100.
		n := 0
		for b.Retry() {
			n++
		}
		if n != 30 || b.Allowed() != 30 || b.Denied() != 1 {
			t.Fatalf("allowed %d (%d), denied %d; want 30, 1", n, b.Allowed(), b.Denied())
		}
		// After the window, old requests and retries have left it.
		time.Sleep(11 * time.Second)
		n = 0
		for b.Retry() {
			n++
		}
		if n != 10 {
			t.Fatalf("after the window: %d retries allowed, want 10", n)
		}
	})
}

// TestEjectionBackoff checks the growing ejection time and the automatic return, on
// synctest's clock.
func TestEjectionBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex // the return's event comes from a timer's goroutine
		var events []lb.HealthEvent
		l, err := lb.New(lb.Options[string]{Backends: backends(2),
			Outlier: lb.OutlierOptions{ConsecutiveFailures: 2, BaseEjection: time.Second, MaxEjection: 10 * time.Second},
			OnHealthChange: func(ev lb.HealthEvent) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		tg := l.Targets()[0]
		fail := func() {
			for range 2 {
				p, _ := l.Select("", nil)
				for p.Target() != tg {
					p.Done(lb.Canceled)
					p, _ = l.Select("", nil)
				}
				p.Done(lb.ServerError)
			}
		}
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
			fail()
			if !tg.Ejected() {
				t.Fatalf("ejection %d did not happen", i+1)
			}
			time.Sleep(want - time.Millisecond)
			synctest.Wait()
			if !tg.Ejected() {
				t.Fatalf("ejection %d ended before %v", i+1, want)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if tg.Ejected() {
				t.Fatalf("ejection %d did not end after %v", i+1, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(events) != 6 || events[4].Duration != 3*time.Second || events[5].Cause != lb.EjectionEnd {
			t.Fatalf("events %+v", events)
		}
	})
}
