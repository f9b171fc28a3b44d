package grpcwebclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Result is what a gRPC-web call returned.
type Result struct {
	ContentType string      // of the response
	Header      http.Header // the response head
	// Trailers are the fields of the trailer frame, or the head's for a trailers-only
	// response (TrailersOnly).
	Trailers     http.Header
	TrailersOnly bool
	Messages     [][]byte // the response messages, unframed
	Code         codes.Code
	Message      string // grpc-message, decoded
	// Segments is, for the text form, how many base64 segments (each padded at its
	// end) the body held: 1 from a server that encodes its body as one stream.
	Segments int
}

// Call calls method ("/package.Service/Method") with the request message req through
// client at base ("http://host:port"), in the text form if text, and returns what came
// back. md holds request metadata, sent as header fields. An error means the exchange
// itself failed, or the response was not gRPC-web or not well formed; a gRPC status
// other than OK is in the result.
func Call(ctx context.Context, client *http.Client, base, method string, text bool, md http.Header, req proto.Message) (*Result, error) {
	m, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(m)))
	body = append(body, m...)
	ct := "application/grpc-web+proto"
	if text {
		ct = "application/grpc-web-text+proto"
		body = base64.StdEncoding.AppendEncode(nil, body)
	}
	hreq, err := http.NewRequestWithContext(ctx, "POST", base+method, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range md {
		hreq.Header[k] = v
	}
	hreq.Header.Set("Content-Type", ct)
	hreq.Header.Set("X-Grpc-Web", "1") // what browser libraries send; the bridge needs only Content-Type
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &Result{ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Trailers: http.Header{}}
	wantCT, _, _ := strings.Cut(ct, "+")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(r.ContentType, wantCT) {
		return nil, fmt.Errorf("%s: HTTP status %d, Content-Type %q, want 200 and %s", method, resp.StatusCode, r.ContentType, wantCT)
	}
	if text {
		if raw, r.Segments, err = DecodeText(raw); err != nil {
			return nil, fmt.Errorf("%s: response body: %w", method, err)
		}
	}
	sawTrailers := false
	for len(raw) > 0 {
		if len(raw) < 5 || uint32(len(raw)-5) < binary.BigEndian.Uint32(raw[1:5]) {
			return nil, fmt.Errorf("%s: response body: truncated frame", method)
		}
		flag, data := raw[0], raw[5:5+binary.BigEndian.Uint32(raw[1:5])]
		raw = raw[5+len(data):]
		if flag&0x80 == 0 {
			r.Messages = append(r.Messages, data)
			continue
		}
		if len(raw) > 0 {
			return nil, fmt.Errorf("%s: response body: data after the trailer frame", method)
		}
		sawTrailers = true
		for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\r\n"), "\r\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok || strings.ToLower(k) != k {
				return nil, fmt.Errorf("%s: trailer frame: bad line %q", method, line)
			}
			r.Trailers.Add(k, v)
		}
	}
	if !sawTrailers { // trailers-only: the status is in the head
		r.Trailers, r.TrailersOnly = resp.Header, true
	}
	code, err := strconv.ParseUint(r.Trailers.Get("Grpc-Status"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: no grpc-status in the trailer frame or the head", method)
	}
	r.Code = codes.Code(code)
	if r.Message, err = url.PathUnescape(r.Trailers.Get("Grpc-Message")); err != nil {
		return nil, fmt.Errorf("%s: grpc-message: %w", method, err)
	}
	return r, nil
}

// DecodeText decodes a grpc-web-text body and counts its segments. A server may encode
// each piece it writes on its own, so the body may be several padded base64 segments in
// a row.
func DecodeText(b []byte) (out []byte, segments int, err error) {
	for len(b) > 0 {
		n := len(b)
		if i := bytes.IndexByte(b, '='); i >= 0 {
			n = i
			for n < len(b) && b[n] == '=' {
				n++
			}
		}
		if out, err = base64.StdEncoding.AppendDecode(out, b[:n]); err != nil {
			return nil, 0, err
		}
		b = b[n:]
		segments++
	}
	return out, segments, nil
}
