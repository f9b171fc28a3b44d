package main

import (
	"bytes"
	"context"
	"encoding/base64"
	byteorder "encoding/binary" // "binary" is the gateway command of the tests
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"
)

// TestGRPCWeb makes a gRPC-web unary call, binary and text, over HTTP/1.1 through the
// gateway binary run as `gateway -upstream ADDR -upstream-proto h2c -grpc-web` in front
// of grpc-go's interop TestService, with one upstream and balancing, and checks that it
// gets what a native gRPC call through the gateway gets. Without -grpc-web the call
// reaches the server as it is and is no gRPC-web call to it; -grpc-web with an HTTP/1.1
// upstream is refused at start.
func TestGRPCWeb(t *testing.T) {
	grpcLogger() // before any gRPC code runs (see TestGRPCInterop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, interop.NewTestServer())
	go gs.Serve(ln)
	defer gs.Stop()
	upstream := ln.Addr().String()
	req := &testgrpc.SimpleRequest{ResponseSize: 314, Payload: &testgrpc.Payload{Body: make([]byte, 271)}}

	for _, tc := range []struct {
		name    string
		args    []string
		bridged bool
	}{
		{"one upstream", []string{"-grpc-web"}, true},
		{"balanced", []string{"-grpc-web", "-lb", "round-robin"}, true},
		{"without -grpc-web", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			gw := startGateway(t, append([]string{"-listen", addr, "-upstream", upstream, "-upstream-proto", "h2c"}, tc.args...)...)
			waitFor(t, "the gateway to accept", 10*time.Second, func() bool {
				select {
				case <-gw.exited:
					t.Fatalf("gateway exited: %v\n%s", gw.err, gw.stderr.String())
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return false
				}
				c.Close()
				return true
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			want, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, req)
			if err != nil {
				t.Fatal(err)
			}

			tr := &http.Transport{} // HTTP/1.1 to an http:// URL
			defer tr.CloseIdleConnections()
			for _, text := range []bool{false, true} {
				status, ct, msgs, grpcStatus := webUnary(ctx, t, &http.Client{Transport: tr}, addr, text, req)
				if !tc.bridged {
					if status == 200 && strings.HasPrefix(ct, "application/grpc-web") {
						t.Fatalf("text=%v: bridged without -grpc-web: %d %s", text, status, ct)
					}
					continue
				}
				wantCT := "application/grpc-web+proto"
				if text {
					wantCT = "application/grpc-web-text+proto"
				}
				if status != 200 || ct != wantCT || grpcStatus != "0" || len(msgs) != 1 {
					t.Fatalf("text=%v: HTTP %d, Content-Type %q, grpc-status %q, %d messages; want 200, %s, 0 and one message",
						text, status, ct, grpcStatus, len(msgs), wantCT)
				}
				got := new(testgrpc.SimpleResponse)
				if err := proto.Unmarshal(msgs[0], got); err != nil || !proto.Equal(got, want) {
					t.Fatalf("text=%v: the answer differs from the native call's (%v)", text, err)
				}
			}
		})
	}

	out, err := exec.Command(binary, "-listen", "127.0.0.1:0", "-upstream", upstream, "-grpc-web").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-grpc-web needs -upstream-proto h2c or h2") {
		t.Fatalf("-grpc-web with an HTTP/1.1 upstream: %v %s", err, out)
	}
}

// webUnary calls UnaryCall with req as gRPC-web at the gateway at addr, in the text form
// if text, and returns the HTTP status, the Content-Type, the response messages and the
// grpc-status of the trailer frame. The body is not parsed if the response is not
// gRPC-web.
func webUnary(ctx context.Context, t *testing.T, client *http.Client, addr string, text bool, req proto.Message) (status int, ct string, msgs [][]byte, grpcStatus string) {
	t.Helper()
	m, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	body := byteorder.BigEndian.AppendUint32([]byte{0}, uint32(len(m))) // flag 0, length
	body = append(body, m...)
	ct = "application/grpc-web+proto"
	if text {
		ct = "application/grpc-web-text+proto"
		body = base64.StdEncoding.AppendEncode(nil, body)
	}
	hreq, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/grpc.testing.TestService/UnaryCall", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", ct)
	resp, err := client.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	status, ct = resp.StatusCode, resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/grpc-web") {
		return status, ct, nil, ""
	}
	if text {
		// The gateway encodes the body as one base64 stream, padded at its end only.
		if raw, err = base64.StdEncoding.DecodeString(string(raw)); err != nil {
			t.Fatalf("response body: %v", err)
		}
	}
	for len(raw) >= 5 {
		flag, n := raw[0], byteorder.BigEndian.Uint32(raw[1:5])
		if uint32(len(raw)-5) < n {
			t.Fatalf("response body: a frame of %d bytes, %d left", n, len(raw)-5)
		}
		data := raw[5 : 5+n]
		raw = raw[5+n:]
		if flag&0x80 == 0 {
			msgs = append(msgs, data)
			continue
		}
		for line := range strings.SplitSeq(string(data), "\r\n") {
			if v, ok := strings.CutPrefix(line, "grpc-status: "); ok {
				grpcStatus = v
			}
		}
	}
	if len(raw) > 0 {
		t.Fatalf("response body: %d bytes after the last frame", len(raw))
	}
	return status, ct, msgs, grpcStatus
}
