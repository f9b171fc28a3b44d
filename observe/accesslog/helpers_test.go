package accesslog

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// fields is an observe.Header over name/value pairs.
type fields []string

func (h fields) Get(name string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], name) {
			return h[i+1]
		}
	}
	return ""
}

func (h *fields) Set(name, value string) {
	for i := 0; i+1 < len(*h); i += 2 {
		if strings.EqualFold((*h)[i], name) {
			(*h)[i+1] = value
			return
		}
	}
	*h = append(*h, name, value)
}

func (h fields) Range(f func(name, value string) bool) {
	for i := 0; i+1 < len(h); i += 2 {
		if !f(h[i], h[i+1]) {
			return
		}
	}
}

// start is the start time of the hand-built requests: 2026-12-06 21:04:05.123456 UTC.
var start = time.Date(2026, 12, 6, 21, 4, 5, 123456789, time.UTC)

// request returns a successful proxied GET as the proxy fills it.
func request() *observe.Request {
	h := fields{"Host", "example.com", "User-Agent", "curl/8.11.0", "Referer", "https://example.com/start"}
	return &observe.Request{
		Service: "gateway", Proto: "HTTP/1.1", Scheme: "http",
		Method: "GET", Target: "/a/b?x=1", Host: "example.com",
		Client: "192.0.2.7", Header: &h, Start: start,
		End:    start.Add(12345678 * time.Nanosecond),
		Status: 200, Attempts: 1, Upstream: "10.0.0.7:8080", UpstreamStatus: 200, Reused: true,
		BytesSent: 5120, BytesReceived: 17,
		Connected: start.Add(time.Millisecond), FirstByte: start.Add(3456 * time.Microsecond),
	}
}

// sink is an io.Writer that keeps what it is given and tells each write on a channel.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes [][]byte      // each Write's bytes
	wrote  chan struct{} // gets a value (if there is room) after each Write
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf.Write(p)
	s.writes = append(s.writes, bytes.Clone(p))
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *sink) Writes() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// JSONLine is a line of the JSON format as encoding/json reads and writes it: with a
// time.Time to read one, with a string to write one (see BenchmarkFormatEncodingJSON).
// It is exported for the package's external tests.
type JSONLine[Time any] struct {
	Time           Time    `json:"time"`
	Service        string  `json:"service"`
	Client         string  `json:"client"`
	Method         string  `json:"method"`
	Target         string  `json:"target"`
	Proto          string  `json:"proto"`
	Host           string  `json:"host"`
	Status         int     `json:"status"`
	UpstreamStatus int     `json:"upstream_status"`
	Upstream       string  `json:"upstream"`
	BytesSent      int64   `json:"bytes_sent"`
	BytesReceived  int64   `json:"bytes_received"`
	DurationMS     float64 `json:"duration_ms"`
	TTFBMS         float64 `json:"ttfb_ms"`
	Attempts       int     `json:"attempts"`
	Reused         bool    `json:"reused"`
	Cache          string  `json:"cache"`
	Error          string  `json:"error"`
	ErrorType      string  `json:"error_type"`
	UserAgent      string  `json:"user_agent"`
	Referer        string  `json:"referer"`
}
