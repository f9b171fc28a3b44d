package main

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

// The gRPC-web protocol (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md),
// from the client's side: what a browser library such as grpc-web or Connect sends, made
// here with net/http over HTTP/1.1.
//
// The request is a POST of Content-Type application/grpc-web (or
// application/grpc-web-text, the same bytes in base64), whose body is the messages in
// gRPC's framing: a flag byte (0), a 4-byte big-endian length, the message. The response
// body holds the messages in the same framing, then a last frame of flag 0x80 that
// carries the trailers (grpc-status, grpc-message, ...) as "name: value\r\n" lines,
// since a browser cannot read HTTP trailers. A call that fails before any message may
// instead get a "trailers-only" response: no body, the status in the response head.

// webResult is what a gRPC-web call returned.
type webResult struct {
	contentType string      // of the response
	header      http.Header // the response head
	trailers    http.Header // from the trailer frame; the head's fields for trailers-only
	messages    [][]byte    // the response messages, unframed
	code        codes.Code
	message     string // grpc-message, decoded
}

// grpcWebCall calls method ("/package.Service/Method") with one request message through
// client at base ("http://host:port"), in the text form if text, and returns what came
// back. md holds request metadata, sent as header fields. An error means the exchange
// itself failed, or the response was not gRPC-web; a gRPC status other than OK is in the
// result.
func grpcWebCall(ctx context.Context, client *http.Client, base, method string, text bool, md http.Header, req proto.Message) (*webResult, error) {
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
	r := &webResult{contentType: resp.Header.Get("Content-Type"), header: resp.Header, trailers: http.Header{}}
	wantCT, _, _ := strings.Cut(ct, "+")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(r.contentType, wantCT) {
		return nil, fmt.Errorf("%s: HTTP status %d, Content-Type %q, want 200 and %s", method, resp.StatusCode, r.contentType, wantCT)
	}
	if text {
		if raw, err = decodeBase64Segments(raw); err != nil {
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
			r.messages = append(r.messages, data)
			continue
		}
		if len(raw) > 0 {
			return nil, fmt.Errorf("%s: response body: data after the trailer frame", method)
		}
		sawTrailers = true
		for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\r\n"), "\r\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s: trailer frame: bad line %q", method, line)
			}
			r.trailers.Add(k, strings.TrimSpace(v))
		}
	}
	if !sawTrailers { // trailers-only: the status is in the head
		r.trailers = resp.Header
	}
	code, err := strconv.ParseUint(r.trailers.Get("Grpc-Status"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: no grpc-status in the trailer frame or the head", method)
	}
	r.code = codes.Code(code)
	if r.message, err = url.PathUnescape(r.trailers.Get("Grpc-Message")); err != nil {
		return nil, fmt.Errorf("%s: grpc-message: %w", method, err)
	}
	return r, nil
}

// decodeBase64Segments decodes a grpc-web-text body. A server may encode each piece it
// writes on its own, so the body may be several padded base64 segments in a row.
func decodeBase64Segments(b []byte) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		n := len(b)
		if i := bytes.IndexByte(b, '='); i >= 0 {
			n = i
			for n < len(b) && b[n] == '=' {
				n++
			}
		}
		var err error
		if out, err = base64.StdEncoding.AppendDecode(out, b[:n]); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	return out, nil
}
