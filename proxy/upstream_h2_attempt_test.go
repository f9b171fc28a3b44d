package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// h2FieldsOrigin runs an h2c origin on internal/h2's server that answers each request
// with h, after recording its head (see heads).
type h2FieldsOrigin struct {
	addr string
	mu   sync.Mutex
	reqs []h2.Request
}

func startH2FieldsOrigin(t *testing.T, h func(st *h2.Stream)) *h2FieldsOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &h2FieldsOrigin{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*h2.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := h2.NewConn(nc, nil, h2.Options{}, func(st *h2.Stream) {
				r := *st.Request()
				r.Fields = append([]h2.Field(nil), r.Fields...)
				o.mu.Lock()
				o.reqs = append(o.reqs, r)
				o.mu.Unlock()
				for {
					if _, err := st.ReadBody(); err != nil {
						break
					}
				}
				h(st)
			})
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Serve()
			}()
		}
	}()
	return o
}

// last returns the head of the last request the origin received.
func (o *h2FieldsOrigin) last() h2.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reqs[len(o.reqs)-1]
}

func fieldValues(fields []h2.Field, name string) []string {
	var vs []string
	for _, f := range fields {
		if f.Name == name {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// The head of a request to an HTTP/2 peer, built from the message header: lowercase
// names in the client's order, Host as :authority, no field of HTTP/1.x connections (an
// HTTP/1.1 client's TE is one), the length of a body known in advance; the response head comes
// back with net/http's canonical names, Trailer out and the length dropped for
// announced trailers.
func TestH2ConnsHeads(t *testing.T) {
	origin := startH2FieldsOrigin(t, func(st *h2.Stream) {
		st.WriteHeaders(200, []h2.Field{{Name: "x-answer", Value: "a"}, {Name: "content-type", Value: "text/plain"},
			{Name: "trailer", Value: "x-sum"}, {Name: "content-length", Value: "2"}}, false)
		st.WriteData([]byte("ok"), false)
		st.WriteTrailers([]h2.Field{{Name: "x-sum", Value: "42"}})
	})
	peer := testPeer(origin.addr)
	peer.Protocol = ProtoHTTP2
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
	nc, err := net.Dial("tcp", startProxy(t, svc))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	for _, te := range []string{"gzip", "trailers"} {
		t.Run(te, func(t *testing.T) {
			io.WriteString(nc, "POST /p%41th?q=1 HTTP/1.1\r\nHost: origin.test\r\nX-First: 1\r\nX-Mixed-CASE: 2\r\n"+
				"TE: "+te+"\r\nContent-Length: 5\r\nX-Last: 3\r\n\r\nhello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, logs)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := origin.last()
			if r.Method != "POST" || r.Path != "/p%41th?q=1" || r.Authority != "origin.test" || r.Scheme != "http" {
				t.Errorf("pseudo-headers: %+v", r)
			}
			var names []string
			for _, f := range r.Fields {
				if strings.HasPrefix(f.Name, "x-") && !strings.HasPrefix(f.Name, "x-forwarded") {
					names = append(names, f.Name)
				}
			}
			if got := strings.Join(names, " "); got != "x-first x-mixed-case x-last" {
				t.Errorf("fields %q", got)
			}
			if got := fieldValues(r.Fields, "content-length"); len(got) != 1 || got[0] != "5" {
				t.Errorf("content-length %q", got)
			}
			if got := fieldValues(r.Fields, "te"); len(got) != 0 {
				t.Errorf("te %q sent", got)
			}
			if len(fieldValues(r.Fields, "host")) != 0 {
				t.Error("host sent as a field")
			}
			if resp.StatusCode != 200 || string(body) != "ok" || resp.Trailer.Get("X-Sum") != "42" {
				t.Errorf("response %d %q trailers %v", resp.StatusCode, body, resp.Trailer)
			}
			if resp.Header.Get("X-Answer") != "a" || resp.ContentLength != -1 {
				t.Errorf("response head %v, length %d", resp.Header, resp.ContentLength)
			}
		})
	}
}

// Attempts are reused: one whose read timeout fired is not, and the requests after it
// are not cut by its timer.
func TestH2ConnsAttemptsAfterTimeout(t *testing.T) {
	release := make(chan struct{})
	origin := startH2FieldsOrigin(t, func(st *h2.Stream) {
		if st.Request().Path == "/slow" {
			select {
			case <-release:
			case <-st.Done():
			}
			return
		}
		st.WriteHeaders(200, []h2.Field{{Name: "content-length", Value: "2"}}, false)
		st.WriteData([]byte("ok"), true)
	})
	defer close(release)
	peer := testPeer(origin.addr)
	peer.Protocol = ProtoHTTP2
	peer.Options.ReadTimeout = time.Second
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
	url := "http://" + startProxy(t, svc)
	cl := testClient(t)
	get := func(path string) (int, string) {
		resp, err := cl.Get(url + path)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range 3 {
		if code, _ := get("/slow"); code != http.StatusGatewayTimeout {
			t.Fatalf("slow %d: status %d\n%s", i, code, logs)
		}
		for j := range 20 {
			// Each wait is well within the read timeout: a timer of an earlier
			// attempt that cut this one would fail it.
			if code, body := get("/fast"); code != 200 || body != "ok" {
				t.Fatalf("fast %d.%d: %d %q\n%s", i, j, code, body, logs)
			}
		}
	}
}
