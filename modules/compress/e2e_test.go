package compress_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// wait bounds every wait on an event in these tests.
const wait = 10 * time.Second

// sample is a compressible body of n bytes, the same for a given n.
func sample(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<li class=\"row\" id=\"r%d\">item %d of the list, %s</li>\n", i, i*7%1000, strings.Repeat("ab", i%17))
	}
	return b.Bytes()[:n]
}

// reader decodes body coded with coding ("" for none) with the coding's reference
// reader: Go's gzip, and the Brotli and zstd libraries'.
func reader(t testing.TB, coding string, body io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		return zr
	case "br":
		return brotli.NewReader(body)
	case "zstd":
		zd, err := zstd.NewReader(body)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zd.Close)
		return zd
	}
	t.Fatalf("unknown coding %q", coding)
	return nil
}

// proto is one way a client reaches the proxy.
type proto struct {
	name   string
	tls    bool
	client func(t *testing.T, cert *proxytest.Cert) *http.Client
}

var protos = []proto{
	{"h1", false, func(t *testing.T, _ *proxytest.Cert) *http.Client { return proxytest.H1Client(t, nil) }},
	{"h2c", false, func(t *testing.T, _ *proxytest.Cert) *http.Client { return proxytest.H2CClient(t) }},
	{"h2-tls", true, func(t *testing.T, c *proxytest.Cert) *http.Client { return proxytest.H2Client(t, c) }},
}

// logged is a FixedPeer that reports each request's error from Logging.
type logged struct {
	proxytest.FixedPeer
	errs chan error
}

func (l *logged) Logging(_ context.Context, _ *proxy.Session, _ struct{}, err error) {
	select {
	case l.errs <- err:
	default:
	}
}

// serve runs a proxy to origin with modules, reachable over p; it returns the base URL
// and the client.
func serve(t *testing.T, p proto, origin *proxytest.Origin, app *logged, modules ...proxy.Module) (string, *http.Client) {
	t.Helper()
	if app == nil {
		app = &logged{}
	}
	app.Peer = origin.Peer()
	svc := proxytest.NewService(t, "compress", app, proxyOpts(modules...))
	scheme := "http"
	var cert *proxytest.Cert
	if p.tls {
		cert = proxytest.NewCert(t)
		svc.AddTLS("127.0.0.1:0", cert.Config)
		scheme = "https"
	}
	addr := proxytest.Serve(t, svc)
	return scheme + "://" + addr, p.client(t, cert)
}

func proxyOpts(modules ...proxy.Module) proxy.ServiceOptions {
	return proxy.ServiceOptions{Modules: modules}
}

func get(t *testing.T, cl *http.Client, method, url string, fields ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		req.Header.Set(fields[i], fields[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, raw
}

func newModule(t testing.TB, opts compress.Options) *compress.Module {
	m, err := compress.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRoundTrip sends a body, of known length and chunked in pieces, through the proxy
// in each coding over each protocol, and decodes it with the coding's reference reader.
func TestRoundTrip(t *testing.T) {
	body := sample(100 << 10)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Vary", "Origin")
		if r.URL.Path == "/chunked" {
			for i := 0; i < len(body); i += 7000 {
				w.Write(body[i:min(i+7000, len(body))])
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	m := newModule(t, compress.Options{})
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			base, cl := serve(t, p, origin, nil, m)
			for _, path := range []string{"/length", "/chunked"} {
				for _, coding := range []string{"gzip", "br", "zstd"} {
					resp, raw := get(t, cl, "GET", base+path, "Accept-Encoding", coding)
					if ce := resp.Header.Get("Content-Encoding"); ce != coding {
						t.Fatalf("%s %s: Content-Encoding %q", path, coding, ce)
					}
					got, err := io.ReadAll(reader(t, coding, bytes.NewReader(raw)))
					if err != nil || !bytes.Equal(got, body) {
						t.Fatalf("%s %s: decoded %d bytes (%v), want the %d sent", path, coding, len(got), err, len(body))
					}
					if len(raw) > len(body)/2 {
						t.Errorf("%s %s: %d bytes coded from %d", path, coding, len(raw), len(body))
					}
					if resp.ContentLength != -1 || resp.Header.Get("Accept-Ranges") != "" {
						t.Errorf("%s %s: Content-Length %d, Accept-Ranges %q kept", path, coding, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
					}
					if v, e := resp.Header.Values("Vary"), resp.Header.Get("ETag"); strings.Join(v, ",") != "Origin, Accept-Encoding" || e != `W/"v1"` {
						t.Errorf("%s %s: Vary %q, ETag %q", path, coding, v, e)
					}
				}
				// The default order picks zstd for a browser that takes all three.
				resp, _ := get(t, cl, "GET", base+path, "Accept-Encoding", "gzip, deflate, br, zstd")
				if ce := resp.Header.Get("Content-Encoding"); ce != "zstd" {
					t.Errorf("%s: a browser's Accept-Encoding got %q", path, ce)
				}
			}
		})
	}
}

// TestNegotiation runs q-value cases through the proxy with a server order of br, gzip.
func TestNegotiation(t *testing.T) {
	body := sample(4 << 10)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	base, cl := serve(t, protos[0], origin, nil, newModule(t, compress.Options{Codings: []string{"br", "gzip"}}))
	for _, tt := range []struct {
		ae   string // "-" for no field
		want string
	}{
		{"-", ""},
		{"", ""},
		{"gzip, br, zstd", "br"},
		{"zstd", ""},
		{"gzip;q=0.9, br;q=0.8", "gzip"},
		{"br;q=0, *", "gzip"},
		{"*;q=0", ""},
		{"identity, gzip;q=0.5", ""},
		{"x-gzip", "gzip"},
	} {
		t.Run(tt.ae, func(t *testing.T) {
			var fields []string
			if tt.ae != "-" {
				fields = []string{"Accept-Encoding", tt.ae}
			}
			resp, raw := get(t, cl, "GET", base+"/", fields...)
			if ce := resp.Header.Get("Content-Encoding"); ce != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", ce, tt.want)
			}
			if resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary %q", resp.Header.Get("Vary"))
			}
			got, err := io.ReadAll(reader(t, tt.want, bytes.NewReader(raw)))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("decoded %d bytes (%v)", len(got), err)
			}
		})
	}
}

// TestSkipped checks the responses the module leaves as they are, over HTTP/1.1 and
// HTTP/2.
func TestSkipped(t *testing.T) {
	body := sample(8 << 10)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/coded":
			h.Set("Content-Encoding", "x-custom")
		case "/no-transform":
			h.Set("Cache-Control", "max-age=60, no-transform")
		case "/image":
			h.Set("Content-Type", "image/png")
		case "/small":
			w.Write(body[:100])
			return
		case "/204":
			w.WriteHeader(204)
			return
		case "/304":
			w.WriteHeader(304)
			return
		case "/empty":
			h.Set("Content-Length", "0")
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body)) // HEAD, Range and 206 as net/http does
	}))
	m := newModule(t, compress.Options{})
	for _, p := range protos[:2] {
		t.Run(p.name, func(t *testing.T) {
			base, cl := serve(t, p, origin, nil, m)
			for _, tt := range []struct {
				name, method, path string
				fields             []string
				status             int
				vary               bool
				ce                 string // Content-Encoding expected (the origin's own)
				wantBody           []byte
			}{
				{"coded already", "GET", "/coded", nil, 200, false, "x-custom", body},
				{"no-transform", "GET", "/no-transform", nil, 200, false, "", body},
				{"not a listed type", "GET", "/image", nil, 200, false, "", body},
				{"small", "GET", "/small", nil, 200, false, "", body[:100]},
				{"204", "GET", "/204", nil, 204, false, "", nil},
				{"304", "GET", "/304", nil, 304, false, "", nil},
				{"empty", "GET", "/empty", nil, 200, false, "", nil},
				{"range", "GET", "/", []string{"Range", "bytes=10-999"}, 206, true, "", body[10:1000]},
				{"HEAD", "HEAD", "/", nil, 200, true, "gzip", nil},
			} {
				t.Run(tt.name, func(t *testing.T) {
					fields := append([]string{"Accept-Encoding", "gzip"}, tt.fields...)
					resp, raw := get(t, cl, tt.method, base+tt.path, fields...)
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
					}
					if ce := resp.Header.Get("Content-Encoding"); ce != tt.ce {
						t.Errorf("Content-Encoding %q, want %q", ce, tt.ce)
					}
					if got := resp.Header.Get("Vary") == "Accept-Encoding"; got != tt.vary {
						t.Errorf("Vary %q", resp.Header.Get("Vary"))
					}
					if !bytes.Equal(raw, tt.wantBody) {
						t.Errorf("body of %d bytes, want %d unchanged", len(raw), len(tt.wantBody))
					}
				})
			}
		})
	}
}

// TestServerSentEvents checks events arrive one by one, coded, while the origin sends
// one per flush and waits for the test before the next.
func TestServerSentEvents(t *testing.T) {
	const events = 5
	next := make(chan struct{})
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := range events {
			select {
			case <-next:
			case <-r.Context().Done():
				return
			case <-time.After(wait):
				return
			}
			fmt.Fprintf(w, "id: %d\ndata: event number %d %s\n\n", i, i, strings.Repeat("x", i*50))
			w.(http.Flusher).Flush()
		}
	}))
	m := newModule(t, compress.Options{})
	for _, p := range protos {
		for _, coding := range []string{"gzip", "br", "zstd"} {
			t.Run(p.name+"/"+coding, func(t *testing.T) {
				base, cl := serve(t, p, origin, nil, m)
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
				req.Header.Set("Accept-Encoding", coding)
				results := make(chan string)
				errs := make(chan error, 1)
				exited := make(chan struct{})
				defer func() { cancel(); <-exited }() // the reader ends before the test does
				go func() {
					defer close(exited)
					// The head comes after the first event: the origin's first flush.
					resp, err := cl.Do(req)
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					if ce := resp.Header.Get("Content-Encoding"); ce != coding {
						errs <- fmt.Errorf("Content-Encoding %q", ce)
						return
					}
					br := bufio.NewReader(reader(t, coding, resp.Body))
					for {
						var ev strings.Builder
						for {
							line, err := br.ReadString('\n')
							if err != nil {
								errs <- err
								return
							}
							if line == "\n" {
								break
							}
							ev.WriteString(line)
						}
						select {
						case results <- ev.String():
						case <-ctx.Done():
							return
						}
					}
				}()
				for i := range events {
					select {
					case next <- struct{}{}:
					case err := <-errs:
						t.Fatalf("before event %d: %v", i, err)
					case <-ctx.Done():
						t.Fatalf("the origin did not take event %d", i)
					}
					select {
					case ev := <-results:
						if want := fmt.Sprintf("id: %d\ndata: event number %d ", i, i); !strings.HasPrefix(ev, want) {
							t.Fatalf("event %d: %q", i, ev)
						}
					case err := <-errs:
						t.Fatalf("event %d: %v", i, err)
					case <-ctx.Done():
						t.Fatalf("event %d did not arrive before the next was sent", i)
					}
				}
			})
		}
	}
}

// TestCurl decodes each coding with curl --compressed, when curl supports the coding.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	v, err := exec.Command(curl, "--version").Output()
	if err != nil {
		t.Skipf("curl --version: %v", err)
	}
	var features string
	for _, line := range strings.Split(string(v), "\n") {
		if f, ok := strings.CutPrefix(line, "Features:"); ok {
			features = " " + strings.ToLower(f) + " "
		}
	}
	body := sample(50 << 10)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Write(body)
	}))
	base, _ := serve(t, protos[0], origin, nil, newModule(t, compress.Options{}))
	for coding, feature := range map[string]string{"gzip": "libz", "br": "brotli", "zstd": "zstd"} {
		t.Run(coding, func(t *testing.T) {
			if !strings.Contains(features, " "+feature+" ") {
				t.Skipf("this curl lacks %s (its features:%s)", feature, features)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			out, err := exec.CommandContext(ctx, curl, "-sS", "--compressed", "-H", "Accept-Encoding: "+coding,
				"-D", "-", base+"/style.css").Output()
			if err != nil {
				t.Fatalf("curl: %v", err)
			}
			head, got, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			if !bytes.Contains(bytes.ToLower(head), []byte("content-encoding: "+coding)) {
				t.Fatalf("curl saw no Content-Encoding: %s:\n%s", coding, head)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("curl decoded %d bytes, want %d", len(got), len(body))
			}
		})
	}
}

// TestDecoder decodes what the origin coded, recodes it for the client, and refuses a
// decompression bomb.
func TestDecoder(t *testing.T) {
	body := sample(60 << 10)
	coded := func(coding string, b []byte) []byte {
		var buf bytes.Buffer
		var w io.WriteCloser
		switch coding {
		case "gzip":
			w = kgzip.NewWriter(&buf)
		case "br":
			w = brotli.NewWriter(&buf)
		case "zstd":
			w, _ = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		}
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	bombs := map[string][]byte{}
	plain := map[string][]byte{}
	zeros := make([]byte, 32<<20)
	for _, c := range []string{"gzip", "br", "zstd"} {
		bombs[c] = coded(c, zeros)
		plain[c] = coded(c, body)
	}
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		coding := r.URL.Query().Get("c")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", coding)
		src := plain[coding]
		if r.URL.Path == "/bomb" {
			src = bombs[coding]
		}
		for i := 0; i < len(src); i += 4000 {
			if _, err := w.Write(src[i:min(i+4000, len(src))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	dec, err := compress.NewDecoder(compress.DecoderOptions{MaxDecodedSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m := newModule(t, compress.Options{})
	for _, p := range protos[:2] {
		t.Run(p.name, func(t *testing.T) {
			app := &logged{errs: make(chan error, 1)}
			base, cl := serve(t, p, origin, app, dec, m)
			for _, c := range []string{"gzip", "br", "zstd"} {
				for _, want := range []string{"", "gzip", "br"} {
					var fields []string
					if want != "" {
						fields = []string{"Accept-Encoding", want}
					}
					resp, raw := get(t, cl, "GET", base+"/page?c="+c, fields...)
					if ce := resp.Header.Get("Content-Encoding"); ce != want {
						t.Fatalf("origin %s, client %q: Content-Encoding %q", c, want, ce)
					}
					got, err := io.ReadAll(reader(t, want, bytes.NewReader(raw)))
					if err != nil || !bytes.Equal(got, body) {
						t.Fatalf("origin %s, client %q: %d bytes decoded (%v)", c, want, len(got), err)
					}
					if err := <-app.errs; err != nil {
						t.Fatalf("origin %s, client %q: Logging saw %v", c, want, err)
					}
				}
				// The bomb: the response has started, so the client sees it cut short;
				// the proxy's error says why.
				req, _ := http.NewRequest("GET", base+"/bomb?c="+c, nil)
				resp, err := cl.Do(req)
				if err == nil {
					n, rerr := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if rerr == nil {
						t.Fatalf("bomb %s: the client read %d bytes and a clean end", c, n)
					}
					if n > 1<<20 {
						t.Errorf("bomb %s: %d bytes reached the client", c, n)
					}
				}
				select {
				case err := <-app.errs:
					if !errors.Is(err, compress.ErrTooLarge) {
						t.Fatalf("bomb %s: Logging saw %v, want ErrTooLarge", c, err)
					}
				case <-time.After(wait):
					t.Fatalf("bomb %s: no Logging", c)
				}
			}
		})
	}
}
