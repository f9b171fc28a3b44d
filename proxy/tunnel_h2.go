package proxy

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
	"golang.org/x/net/http2"
)

// Tunnels from HTTP/2 clients: a CONNECT (RFC 9113 §8.5) or an extended CONNECT for a
// WebSocket (RFC 8441). The client's stream is answered 200 without ending it, and its
// DATA frames then carry the tunnel's bytes both ways; the client's END_STREAM
// half-closes the peer's connection, the peer's end of data ends the stream, and a reset
// or an error on either side ends both.

// webSocketGUID is the one of RFC 6455 §1.3.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// newWebSocketKey returns a fresh Sec-WebSocket-Key (RFC 6455 §4.1).
func newWebSocketKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// webSocketAccept returns the Sec-WebSocket-Accept a server answers key with.
func webSocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + webSocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var errBadAccept = errors.New("proxy: the peer's Sec-WebSocket-Accept does not match the key")

// tunnelH2 copies bytes both ways between st and the peer until both directions end,
// an error, or the idle timeout.
func (c *conn[C]) tunnelH2(sess *Session, st *h2.Stream, uc *upConn) *Error {
	uc.dl.Forget()
	s := &h2Stream{st: st}
	return c.tunnelWatched(sess, tunnelSide{r: s, rd: s, w: s}, tunnelSide{r: uc.r.Raw(), rd: uc.nc, w: uc.nc}, func() {
		st.Reset(http2.ErrCodeCancel)
		uc.nc.Close()
	})
}

// h2Stream is an HTTP/2 stream as an end of a tunnel: reads return the stream's DATA,
// writes send DATA, CloseWrite ends the stream. Its deadlines do nothing: the stream has its own
// write timeout, and the watchdog of tunnelH2 bounds the waits for data.
type h2Stream struct {
	st   *h2.Stream
	rest []byte // of the last piece read, not yet returned
}

func (s *h2Stream) Read(p []byte) (int, error) {
	if len(s.rest) == 0 {
		b, err := s.st.ReadBody()
		if len(b) == 0 {
			return 0, err
		}
		s.rest = b
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

func (s *h2Stream) Write(p []byte) (int, error) {
	if err := s.st.WriteData(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *h2Stream) CloseWrite() error { return s.st.WriteData(nil, true) }

func (s *h2Stream) Close() error {
	s.st.Reset(http2.ErrCodeCancel)
	return nil
}

func (s *h2Stream) SetReadDeadline(time.Time) error  { return nil }
func (s *h2Stream) SetWriteDeadline(time.Time) error { return nil }

var _ io.ReadWriteCloser = (*h2Stream)(nil)
