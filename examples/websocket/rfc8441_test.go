// x/net/http2's Transport is deprecated for net/http's, but net/http's refuses the
// :protocol pseudo-header that an extended CONNECT (RFC 8441) needs.
//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT.

package main

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// h2cTransport returns an HTTP/2 transport that speaks h2c by prior knowledge, closed
// when the test ends.
func h2cTransport(t *testing.T) *http2.Transport {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// rfc8441 is an http.RoundTripper that lets coder/websocket, which sends the HTTP/1.1
// handshake whatever the transport, speak WebSocket over HTTP/2: it turns the
// handshake (a GET with Upgrade) into an extended CONNECT with :protocol websocket
// (RFC 8441 §4), and the stream's 200 into the 101 that Dial expects, with the stream
// as the connection. Sec-WebSocket-Key and Sec-WebSocket-Accept have no place in
// RFC 8441's handshake (§5): the key stays here and the accept is computed from it.
type rfc8441 struct{ h2 *http2.Transport }

func (r rfc8441) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Header.Get("Sec-WebSocket-Key")
	pr, pw := io.Pipe()
	h2req := req.Clone(req.Context())
	h2req.Method = "CONNECT"
	h2req.Body = pr
	h2req.ContentLength = -1
	for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Key"} {
		h2req.Header.Del(k)
	}
	h2req.Header.Set(":protocol", "websocket")
	resp, err := r.h2.RoundTrip(h2req)
	if err != nil {
		pw.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		pw.Close()
		return resp, nil // a refusal, as it is
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != "" {
		pw.Close()
		resp.Body.Close()
		return nil, errors.New("Sec-WebSocket-Accept in an RFC 8441 response")
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) // RFC 6455 §1.3
	resp.StatusCode = http.StatusSwitchingProtocols
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "websocket")
	resp.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	resp.Body = streamConn{resp.Body, pw}
	return resp, nil
}

// streamConn is an HTTP/2 stream as the connection Dial wants (an io.ReadWriteCloser):
// the response body to read, the request body to write.
type streamConn struct {
	io.ReadCloser
	w *io.PipeWriter
}

func (s streamConn) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s streamConn) Close() error {
	s.w.Close()
	return s.ReadCloser.Close()
}
