package sentry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Bounds on what an event carries of a request, so that a client cannot make events
// large: Sentry cuts tag values at 200 characters, and long paths or errors say
// nothing more past a few hundred bytes.
const (
	maxTag    = 200
	maxPath   = 1024
	maxHeader = 256
	maxValue  = 2048
	maxStack  = 64 << 10
)

// report is what an event needs of a request, copied on the request's path (the
// Request is reused once RequestEnd returns).
type report struct {
	panicked  bool
	value     string // the panic value or the error, printed
	valueType string // its Go type
	recovered any    // the panic value, for BeforeSend's hint
	err       error  // the error, for BeforeSend's hint
	stack     []byte

	service, proto, scheme, method, host, target string
	headers                                      []string // name, value pairs
	status, upstreamStatus, attempts             int
	upstream, errType, errSource                 string
	end                                          time.Time
	duration                                     time.Duration
}

// capture copies what the event for r needs. It runs on the request's path, for
// reported requests only: copies of strings and of the stack, the error's text.
func (o *Observer) capture(r *observe.Request) *report {
	rep := &report{
		service:        r.Service,
		proto:          r.Proto,
		scheme:         r.Scheme,
		method:         r.Method,
		host:           clip(r.Host, maxTag),
		target:         r.Target,
		status:         r.Status,
		upstreamStatus: r.UpstreamStatus,
		attempts:       r.Attempts,
		upstream:       clip(r.Upstream, maxTag),
		errType:        r.ErrType,
		errSource:      r.ErrSource,
		end:            r.End,
		duration:       r.Duration(),
		err:            r.Err,
	}
	if r.End.IsZero() {
		rep.end, rep.duration = time.Now(), 0
	}
	if !o.c.query {
		rep.target, _, _ = strings.Cut(rep.target, "?")
	}
	rep.target = clip(rep.target, maxPath)
	if r.Panic != nil {
		rep.panicked = true
		rep.recovered = r.Panic
		rep.value = clip(fmt.Sprint(r.Panic), maxValue)
		rep.valueType = fmt.Sprintf("%T", r.Panic)
		rep.stack = append([]byte(nil), r.Stack[:min(len(r.Stack), maxStack)]...)
	} else if r.Err != nil {
		rep.value = clip(r.Err.Error(), maxValue)
		rep.valueType = fmt.Sprintf("%T", r.Err)
	}
	if r.Header != nil {
		for _, name := range o.c.headers {
			if v := r.Header.Get(name); v != "" {
				rep.headers = append(rep.headers, name, clip(v, maxHeader))
			}
		}
	}
	return rep
}

// event builds the Sentry event of a report. It runs off the request's path.
func (o *Observer) event(rep *report) (*sentrygo.Event, *sentrygo.EventHint) {
	ev := sentrygo.NewEvent()
	ev.Timestamp = rep.end
	ev.Environment = o.c.environment
	ev.Release = o.c.release
	ev.Logger = "gotthard"

	path, query, _ := strings.Cut(rep.target, "?")
	for k, v := range o.c.tags {
		ev.Tags[k] = clip(v, maxTag)
	}
	setTag(ev, "service", rep.service)
	setTag(ev, "method", rep.method)
	setTag(ev, "host", rep.host)
	setTag(ev, "proto", rep.proto)
	if rep.status != 0 {
		ev.Tags["status"] = strconv.Itoa(rep.status)
	}
	setTag(ev, "upstream", rep.upstream)
	setTag(ev, "error.type", rep.errType)
	setTag(ev, "error.source", rep.errSource)

	req := &sentrygo.Request{Method: rep.method, URL: requestURL(rep.scheme, rep.host, path), QueryString: query}
	if len(rep.headers) > 0 {
		req.Headers = make(map[string]string, len(rep.headers)/2)
		for i := 0; i+1 < len(rep.headers); i += 2 {
			req.Headers[rep.headers[i]] = rep.headers[i+1]
		}
	}
	ev.Request = req

	gc := sentrygo.Context{
		"service":  rep.service,
		"path":     path,
		"attempts": rep.attempts,
		"duration": rep.duration.String(),
	}
	setCtx(gc, "upstream", rep.upstream)
	if rep.upstreamStatus != 0 {
		gc["upstream_status"] = rep.upstreamStatus
	}
	setCtx(gc, "error_type", rep.errType)
	setCtx(gc, "error_source", rep.errSource)
	ev.Contexts["gotthard"] = gc
	if rep.status != 0 {
		ev.Contexts["response"] = sentrygo.Context{"status_code": rep.status}
	}

	hint := &sentrygo.EventHint{}
	switch {
	case rep.panicked:
		ev.Level = sentrygo.LevelFatal
		ev.Tags["panic.type"] = clip(rep.valueType, maxTag)
		ev.Exception = []sentrygo.Exception{{
			Type:       "panic",
			Value:      rep.value,
			Stacktrace: stacktrace(rep.stack),
			Mechanism: &sentrygo.Mechanism{
				Type:    "gotthard.phase",
				Handled: sentrygo.Pointer(false),
				Data:    map[string]any{"panic_type": rep.valueType},
			},
		}}
		hint.RecoveredException = rep.recovered
	case rep.err != nil:
		ev.Level = sentrygo.LevelError
		typ := rep.errType
		if typ == "" {
			typ = rep.valueType
		}
		ev.Exception = []sentrygo.Exception{{
			Type:      typ,
			Value:     rep.value,
			Mechanism: &sentrygo.Mechanism{Type: "gotthard.proxy", Handled: sentrygo.Pointer(true)},
		}}
		ev.Fingerprint = []string{"gotthard", rep.service, strconv.Itoa(rep.status), typ}
		hint.OriginalException = rep.err
	default:
		ev.Level = sentrygo.LevelError
		ev.Message = strconv.Itoa(rep.status) + " " + http.StatusText(rep.status)
		ev.Fingerprint = []string{"gotthard", rep.service, strconv.Itoa(rep.status)}
	}
	return ev, hint
}

// requestURL returns the URL of a request from its scheme, Host and path; a target in
// absolute form (a forward proxy's) is its own URL, and one with no path ("*", or a
// CONNECT's authority) leaves the URL at the host.
func requestURL(scheme, host, path string) string {
	switch {
	case strings.HasPrefix(path, "/"):
		return scheme + "://" + host + path
	case strings.Contains(path, "://"):
		return path
	default:
		return scheme + "://" + host
	}
}

func setTag(ev *sentrygo.Event, k, v string) {
	if v != "" {
		ev.Tags[k] = clip(v, maxTag)
	}
}

func setCtx(c sentrygo.Context, k, v string) {
	if v != "" {
		c[k] = v
	}
}

// clip returns s cut to at most n bytes at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
