package compress_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// BenchmarkProxy100K fetches a 100 KiB text response through a real proxy with the
// module, over one HTTP/1.1 keep-alive connection, asking for each coding in turn
// ("identity": no Accept-Encoding, the module adds only Vary). The client, the origin
// and the proxy share the process, so the figure to read is each coding's time and
// allocations against identity's in the same run.
func BenchmarkProxy100K(b *testing.B) {
	body := sample(100 << 10)
	origin := proxytest.NewOrigin(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	m, err := compress.New(compress.Options{})
	if err != nil {
		b.Fatal(err)
	}
	app := &logged{}
	app.Peer = origin.Peer()
	svc := proxytest.NewService(b, "bench", app, proxyOpts(m))
	addr := proxytest.Serve(b, svc)
	cl := proxytest.H1Client(b, nil)
	for _, coding := range []string{"identity", "gzip", "br", "zstd"} {
		b.Run(coding, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/page", nil)
			if coding != "identity" {
				req.Header.Set("Accept-Encoding", coding)
			} else {
				req.Header.Set("Accept-Encoding", "identity")
			}
			var n int64
			fetch := func() {
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%d, %v", resp.StatusCode, err)
				}
				if ce := resp.Header.Get("Content-Encoding"); ce != coding && !(coding == "identity" && ce == "") {
					b.Fatalf("Content-Encoding %q", ce)
				}
			}
			fetch()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				fetch()
			}
			b.ReportMetric(float64(n), "out-bytes")
		})
	}
}
