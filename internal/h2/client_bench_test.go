package h2

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// The client connection against net/http's HTTP/2 client, both sending a POST of 1 KiB
// to the same h2c origin (net/http's server, which reads the body and answers "ok"),
// one request at a time on one connection. The origin's allocations count in both:
// compare the two, not either alone.

var benchBody = bytes.Repeat([]byte("x"), 1024)

func benchOrigin(b *testing.B) *clientOrigin {
	return startClientOrigin(b, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}), nil)
}

func BenchmarkClientPost(b *testing.B) {
	cc := benchOrigin(b).dial(b, ClientOptions{})
	req := &ClientRequest{Method: "POST", Scheme: "http", Authority: "origin.test", Path: "/post",
		Fields: []Field{{Name: "content-type", Value: "application/octet-stream"}}}
	b.ReportAllocs()
	for b.Loop() {
		st, err := cc.NewStream(req)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.WriteData(benchBody, true); err != nil {
			b.Fatal(err)
		}
		if s, _, err := st.ReadHead(nil); err != nil || s != 200 {
			b.Fatal(s, err)
		}
		for {
			_, err := st.ReadBody()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
	}
}

func BenchmarkClientPostStdlib(b *testing.B) {
	o := benchOrigin(b)
	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 1}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	url := "http://" + o.addr + "/post"
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(benchBody))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode)
		}
	}
}
