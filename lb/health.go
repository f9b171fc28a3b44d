package lb

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HealthCheck configures the active health check a balancer's Run performs on each
// backend every Interval. A backend is marked down after Fall failed checks in a row
// and up again after Rise passed ones (which also ends an ejection by outlier
// detection); new backends start up. The zero value is a TCP
// connect check every 5s with a 2s timeout, Rise 2 and Fall 3.
type HealthCheck struct {
	// HTTP, if not nil, makes the check an HTTP/1.1 request; nil means a TCP connect.
	HTTP *HTTPCheck
	// TLS, if not nil, makes the check connect with TLS using this configuration (for
	// the TCP check: the handshake must succeed). If its ServerName is empty, the
	// HTTP check's Host (without port) or the backend's host is used.
	TLS *tls.Config
	// Port, if not zero, is the port checked instead of the backend's own.
	Port int
	// Interval is the time between checks of a backend. If zero, 5s.
	Interval time.Duration
	// Timeout bounds one check. If zero, 2s; it is at most Interval.
	Timeout time.Duration
	// Rise is how many checks in a row must pass to mark a down backend up. If zero, 2.
	Rise int
	// Fall is how many checks in a row must fail to mark a backend down. If zero, 3.
	Fall int
	// Concurrency bounds the checks run at once. If zero, 16.
	Concurrency int
}

// HTTPCheck is the request of an HTTP health check and what its response must be.
type HTTPCheck struct {
	// Method is the request method. If empty, GET.
	Method string
	// Path is the request target. If empty, "/".
	Path string
	// Host is the Host field. If empty, the backend's address.
	Host string
	// ExpectStatus is the status the response must have. If zero, any 2xx or 3xx.
	ExpectStatus int
	// BodyContains, if not empty, must appear in the first 64 KiB of the response body.
	BodyContains string
}

// maxCheckBody bounds the body read by an HTTP check.
const maxCheckBody = 64 << 10

// ErrCheckFailed is wrapped by the errors of checks that got an unexpected answer.
var ErrCheckFailed = errors.New("lb: health check failed")

func (h *HealthCheck) validate() error {
	const f = "lb: Options.HealthCheck."
	switch {
	case h.Interval < 0:
		return fmt.Errorf(f+"Interval: %v is negative", h.Interval)
	case h.Timeout < 0:
		return fmt.Errorf(f+"Timeout: %v is negative", h.Timeout)
	case h.Rise < 0:
		return fmt.Errorf(f+"Rise: %d is negative", h.Rise)
	case h.Fall < 0:
		return fmt.Errorf(f+"Fall: %d is negative", h.Fall)
	case h.Concurrency < 0:
		return fmt.Errorf(f+"Concurrency: %d is negative", h.Concurrency)
	case h.Port < 0 || h.Port > 65535:
		return fmt.Errorf(f+"Port: %d not in 0..65535", h.Port)
	case h.HTTP == nil:
		return nil
	case strings.ContainsAny(h.HTTP.Method, " \r\n"):
		return fmt.Errorf(f+"HTTP.Method: %q has a space or line break", h.HTTP.Method)
	case strings.ContainsAny(h.HTTP.Path, " \r\n"):
		return fmt.Errorf(f+"HTTP.Path: %q has a space or line break", h.HTTP.Path)
	case h.HTTP.Path != "" && !strings.HasPrefix(h.HTTP.Path, "/"):
		return fmt.Errorf(f+"HTTP.Path: %q does not start with /", h.HTTP.Path)
	case strings.ContainsAny(h.HTTP.Host, " \r\n"):
		return fmt.Errorf(f+"HTTP.Host: %q has a space or line break", h.HTTP.Host)
	}
	return nil
}

// settings returns h with defaults applied.
func (h HealthCheck) settings() HealthCheck {
	if h.Interval == 0 {
		h.Interval = 5 * time.Second
	}
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Second
	}
	h.Timeout = min(h.Timeout, h.Interval)
	if h.Rise == 0 {
		h.Rise = 2
	}
	if h.Fall == 0 {
		h.Fall = 3
	}
	if h.Concurrency == 0 {
		h.Concurrency = 16
	}
	return h
}

// Check runs one check of the backend at addr and returns nil if it passes.
func (h *HealthCheck) Check(ctx context.Context, addr string) error {
	s := h.settings()
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if s.Port != 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("lb: health check of %s: %w", addr, err)
		}
		addr = net.JoinHostPort(host, strconv.Itoa(s.Port))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("lb: health check of %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if s.TLS != nil {
		cfg := s.TLS.Clone()
		if cfg.ServerName == "" {
			host := addr
			if s.HTTP != nil && s.HTTP.Host != "" {
				host = s.HTTP.Host
			}
			if hh, _, err := net.SplitHostPort(host); err == nil {
				host = hh
			}
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("lb: health check of %s: TLS: %w", addr, err)
		}
		c = tc
	}
	if s.HTTP == nil {
		return nil
	}
	return s.HTTP.do(c, addr)
}

// do sends the check's request on c and checks the response.
func (hc *HTTPCheck) do(c net.Conn, addr string) error {
	method, path, host := hc.Method, hc.Path, hc.Host
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	if host == "" {
		host = addr
	}
	req := method + " " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUser-Agent: gotthard-health-check\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("lb: health check of %s: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return fmt.Errorf("lb: health check of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if hc.ExpectStatus != 0 && resp.StatusCode != hc.ExpectStatus ||
		hc.ExpectStatus == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399) {
		return fmt.Errorf("%w: %s answered %d", ErrCheckFailed, addr, resp.StatusCode)
	}
	if hc.BodyContains != "" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
		if err != nil {
			return fmt.Errorf("lb: health check of %s: body: %w", addr, err)
		}
		if !strings.Contains(string(body), hc.BodyContains) {
			return fmt.Errorf("%w: %s: body lacks %q", ErrCheckFailed, addr, hc.BodyContains)
		}
	}
	return nil
}

// checkState is a backend's run of results, owned by the health-check loop.
type checkState struct{ pass, fail int }

// runHealthChecks checks every backend each interval until ctx ends.
func (l *LoadBalancer[T]) runHealthChecks(ctx context.Context) {
	h := l.health.settings()
	states := map[string]*checkState{}
	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	for {
		l.checkRound(ctx, &h, states)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkRound checks every backend once, at most h.Concurrency at a time.
func (l *LoadBalancer[T]) checkRound(ctx context.Context, h *HealthCheck, states map[string]*checkState) {
	ts := l.snap.Load().targets
	errs := make([]error, len(ts))
	sem := make(chan struct{}, h.Concurrency)
	var wg sync.WaitGroup
	for i, t := range ts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = h.Check(ctx, t.backend.Addr)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	seen := make(map[string]bool, len(ts))
	for i, t := range ts {
		addr := t.backend.Addr
		seen[addr] = true
		st := states[addr]
		if st == nil {
			st = &checkState{}
			states[addr] = st
		}
		if errs[i] == nil {
			st.pass, st.fail = st.pass+1, 0
		} else {
			st.pass, st.fail = 0, st.fail+1
		}
		// The set may have changed during the round: act on the current Target.
		cur := l.Lookup(addr)
		if cur == nil {
			continue
		}
		switch {
		case errs[i] != nil && st.fail >= h.Fall && cur.Healthy():
			if cur.setState(stateDown, true) {
				l.log.Warn("lb: backend down", "lb", l.name, "backend", addr, "err", errs[i])
				l.notify(HealthEvent{Backend: cur.backend, Cause: ActiveCheck, Healthy: false, Available: false, Err: errs[i]})
			}
		case errs[i] == nil && st.pass >= h.Rise && !cur.Healthy():
			if cur.setState(stateDown, false) {
				cur.resetScore()
				l.log.Info("lb: backend up", "lb", l.name, "backend", addr)
				l.notify(HealthEvent{Backend: cur.backend, Cause: ActiveCheck, Healthy: true, Available: cur.Available()})
				// Back from being down, the backend is no outlier any more: end an
				// ejection that began while it was failing.
				l.unejectTarget(cur)
			}
		}
	}
	for addr := range states {
		if !seen[addr] {
			delete(states, addr)
		}
	}
}
