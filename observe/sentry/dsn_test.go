package sentry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// ingest is a Sentry ingest endpoint on loopback: it keeps the event items of the
// envelopes posted to it.
type ingest struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	raw    []string
}

func newIngest(t *testing.T) *ingest {
	in := &ingest{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.HasSuffix(r.URL.Path, "/envelope/") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		in.add(body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// add keeps the event items of an envelope: lines of JSON, an item's header
// (with its type) before its payload.
func (in *ingest) add(body []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.raw = append(in.raw, string(body))
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	sc.Scan() // the envelope's header
	for sc.Scan() {
		var h struct{ Type string }
		if json.Unmarshal(sc.Bytes(), &h) != nil || !sc.Scan() {
			return
		}
		if h.Type == "event" {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				in.events = append(in.events, ev)
			}
		}
	}
}

func (in *ingest) got() ([]map[string]any, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]map[string]any(nil), in.events...), strings.Join(in.raw, "\n")
}

// dsn returns a DSN for project 1 of the ingest.
func (in *ingest) dsn() string {
	return strings.Replace(in.srv.URL, "http://", "http://publickey@", 1) + "/1"
}

// A DSN makes a client with sentry-go's own asynchronous HTTP transport: the event
// reaches the ingest by Flush, and Close stops the client's goroutines (TestMain's
// leak check sees to it).
func TestDSN(t *testing.T) {
	in := newIngest(t)
	o, err := New(Options{DSN: in.dsn(), Environment: "production", Release: "gateway@1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	r := request(500, nil)
	r.Panic, r.Stack = panicking()
	start := time.Now()
	o.RequestEnd(r)
	if d := time.Since(start); d > time.Second {
		t.Errorf("RequestEnd took %v", d)
	}
	if !o.Flush(10 * time.Second) {
		t.Fatal("Flush timed out")
	}
	events, raw := in.got()
	if len(events) != 1 {
		t.Fatalf("%d events reached the ingest; want 1:\n%s", len(events), raw)
	}
	ev := events[0]
	if ev["level"] != "fatal" || ev["environment"] != "production" || ev["release"] != "gateway@1.0.0" {
		t.Errorf("event level %v environment %v release %v", ev["level"], ev["environment"], ev["release"])
	}
	if !strings.Contains(raw, `"value":"runtime error: index out of range [3] with length 1"`) || !strings.Contains(raw, `"function":"explode"`) {
		t.Errorf("envelope lacks the panic or its frame:\n%s", raw)
	}
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("envelope contains %q", s)
		}
	}
}

// Close sends what the client made from a DSN still holds.
func TestDSNCloseFlushes(t *testing.T) {
	in := newIngest(t)
	o, err := New(Options{DSN: in.dsn(), Release: "gateway@1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	o.RequestEnd(request(502, errRefused))
	o.Close()
	events, raw := in.got()
	if len(events) != 1 || events[0]["level"] != "error" {
		t.Fatalf("%d events reached the ingest; want 1 at level error:\n%s", len(events), raw)
	}
	if !strings.Contains(raw, `"type":"connection refused"`) {
		t.Errorf("envelope lacks the error's kind:\n%s", raw)
	}
}
