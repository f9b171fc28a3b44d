package proxy

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxyH2UpstreamPost measures one proxied POST with a streamed 1 KiB body
// (HTTP/1.1 client, chunked; h2c origin that reads the body and answers "ok"): the
// path where the request goroutine filters the body and net/http's goroutine sends it.
// The client is net/http's, so most allocations counted are the client's and the
// origin's.
func BenchmarkProxyH2UpstreamPost(b *testing.B) {
	addr, _ := startH2OriginWith(b, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	svc, logs := newTestService[*testCtx](b, fixedProxy{peer: &Peer{Address: addr, Protocol: ProtoHTTP2}}, ServiceOptions{})
	url := "http://" + startProxy(b, svc) + "/post"
	cl := testClient(b)
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", url, io.NopCloser(bytes.NewReader(body)))
		req.ContentLength = -1
		resp, err := cl.Do(req)
		if err != nil {
			b.Fatalf("%v\n%s", err, logs.String())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d\n%s", resp.StatusCode, logs.String())
		}
	}
}
