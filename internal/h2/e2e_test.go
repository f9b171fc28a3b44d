package h2

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// streamEcho answers a request with a body by streaming the body back as it arrives,
// and a bodiless one with defaultBody; it echoes request trailers and adds one.
func streamEcho(st *Stream) { streamEchoSampled(st, nil) }

// streamEchoSampled is streamEcho calling sample after every piece of body it reads.
func streamEchoSampled(st *Stream, sample func()) {
	if st.WriteHeaders(200, []Field{{Name: "content-type", Value: "application/octet-stream"}}, false) != nil {
		return
	}
	if st.Request().EndStream {
		_ = st.WriteData(defaultBody, true)
		return
	}
	n := 0
	for {
		b, err := st.ReadBody()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
		n += len(b)
		if sample != nil {
			sample()
		}
		if st.WriteData(b, false) != nil {
			return
		}
	}
	tr := append(st.Trailers(), Field{Name: "x-body-length", Value: strconv.Itoa(n)})
	_ = st.WriteTrailers(tr)
}

// h2Client returns a net/http client speaking HTTP/2 only: h2c by prior knowledge, or
// TLS with ALPN h2 trusting any certificate.
func h2Client(t testing.TB, useTLS bool) (*http.Client, string) {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	scheme := "http"
	if useTLS {
		tr.Protocols.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		scheme = "https"
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}, scheme
}

// patternReader yields n bytes of a fixed pattern, without holding them in memory.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = byte((r.off + int64(i)) * 7 % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func patternSum(n int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, &patternReader{n: n})
	return [32]byte(h.Sum(nil))
}

func TestEndToEnd(t *testing.T) {
	for _, proto := range []string{"h2c", "tls"} {
		t.Run(proto, func(t *testing.T) {
			useTLS := proto == "tls"
			var conf *tls.Config
			if useTLS {
				conf = testTLSConfig(t)
			}
			pool := NewBufPool(0)
			var maxInUse, maxHeap, reads atomic.Int64
			sample := func() {
				if n := pool.InUse(); n > maxInUse.Load() {
					maxInUse.Store(n)
				}
				if reads.Add(1)%64 == 0 {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if h := int64(ms.HeapAlloc); h > maxHeap.Load() {
						maxHeap.Store(h)
					}
				}
			}
			h := func(st *Stream) { streamEchoSampled(st, sample) }
			srv := startServer(t, Options{Pool: pool}, h, conf)
			client, scheme := h2Client(t, useTLS)
			url := scheme + "://" + srv.addr() + "/echo"

			t.Run("GET", func(t *testing.T) {
				resp, err := client.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 || !bytes.Equal(body, defaultBody) {
					t.Fatalf("GET: %v %d %s %q", err, resp.StatusCode, resp.Proto, body)
				}
			})
			for _, size := range []int64{0, 1, 64 << 10, 16 << 20} {
				t.Run(fmt.Sprintf("POST-%d", size), func(t *testing.T) {
					req, err := http.NewRequest("POST", url, io.NopCloser(&patternReader{n: size}))
					if err != nil {
						t.Fatal(err)
					}
					req.ContentLength = -1
					req.Trailer = http.Header{"X-Request-Trailer": {"sent"}}
					runtime.GC()
					var before runtime.MemStats
					runtime.ReadMemStats(&before)
					maxHeap.Store(int64(before.HeapAlloc))
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					h := sha256.New()
					n, err := io.Copy(h, resp.Body)
					_ = resp.Body.Close()
					if err != nil {
						t.Fatal(err)
					}
					if n != size || [32]byte(h.Sum(nil)) != patternSum(size) {
						t.Fatalf("echoed %d bytes, want %d (or content differs)", n, size)
					}
					if grew := maxHeap.Load() - int64(before.HeapAlloc); grew > 8<<20 {
						t.Errorf("heap grew by %d KiB while echoing %d bytes", grew>>10, size)
					} else if size == 16<<20 {
						t.Logf("heap grew by at most %d KiB while echoing 16 MiB", grew>>10)
					}
					if got := resp.Trailer.Get("X-Request-Trailer"); got != "sent" {
						t.Errorf("request trailer echoed as %q", got)
					}
					if got := resp.Trailer.Get("X-Body-Length"); got != strconv.FormatInt(size, 10) {
						t.Errorf("x-body-length trailer %q, want %d", got, size)
					}
				})
			}
			// Flow control bounds what the server holds: the request body buffered
			// per stream never exceeds its window (256 KiB = 16 buffers of 16 KiB),
			// whatever the body size.
			if n := maxInUse.Load(); n > DefaultInitialWindowSize/DefaultBufSize+2 {
				t.Errorf("server held %d body buffers at once", n)
			}
			t.Logf("most body buffers held at once: %d (%d KiB)", maxInUse.Load(), maxInUse.Load()*DefaultBufSize>>10)
		})
	}
}
