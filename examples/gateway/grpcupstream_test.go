package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
)

// TestGRPCUpstream runs the gateway with an HTTP/1.1 origin as -upstream and grpc-go's
// interop TestService as -grpc-upstream: gRPC calls, over h2c on the plain listener and
// over TLS on the TLS listener, reach the gRPC server (the HTTP/1.1 origin cannot answer
// them), and other requests reach the HTTP/1.1 origin.
func TestGRPCUpstream(t *testing.T) {
	var grpcAtOrigin atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isGRPC(r.Header.Get("Content-Type")) {
			grpcAtOrigin.Add(1)
		}
		io.WriteString(w, "from the HTTP/1.1 origin")
	}))
	defer origin.Close()
	grpcOrigin := grpcinterop.StartServer(t)

	dir := t.TempDir()
	certPEM, cert, key := certFiles(t, dir, "gw.test")
	plain, secure := freeAddr(t), freeAddr(t)
	gw := startGateway(t, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key,
		"-upstream", strings.TrimPrefix(origin.URL, "http://"), "-grpc-upstream", grpcOrigin)
	for _, addr := range []string{plain, secure} {
		gw.waitAccepting(t, addr)
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "gw.test"}
	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name  string
		addr  string
		url   string
		creds credentials.TransportCredentials
	}{
		{"h2c", plain, "http://" + plain + "/", insecure.NewCredentials()},
		{"tls", secure, "https://" + secure + "/", credentials.NewTLS(tlsConf)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := testgrpc.NewTestServiceClient(conn)
			if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
				t.Fatalf("EmptyCall: %v", err)
			}
			req := &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{
				{Size: 10}, {Size: 1000}, {Size: 100000},
			}}
			stream, err := client.StreamingOutputCall(ctx, req)
			if err != nil {
				t.Fatalf("StreamingOutputCall: %v", err)
			}
			for i, p := range req.ResponseParameters {
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("Recv %d: %v", i, err)
				}
				if got := len(resp.GetPayload().GetBody()); got != int(p.Size) {
					t.Errorf("response %d: %d bytes, want %d", i, got, p.Size)
				}
			}
			if _, err := stream.Recv(); err != io.EOF {
				t.Errorf("after the last response: %v, want io.EOF", err)
			}

			resp, err := hc.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != "from the HTTP/1.1 origin" {
				t.Errorf("GET %s: %d %q %v", tc.url, resp.StatusCode, b, err)
			}
		})
	}
	if n := grpcAtOrigin.Load(); n != 0 {
		t.Errorf("the HTTP/1.1 origin got %d gRPC calls", n)
	}
}

func TestIsGRPC(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		want        bool
	}{
		{"application/grpc", true},
		{"application/grpc+proto", true},
		{"Application/GRPC", true},
		{"application/grpc-web-text", true},
		{"application/json", false},
		{"application/grp", false},
		{"", false},
	} {
		if got := isGRPC(tc.contentType); got != tc.want {
			t.Errorf("isGRPC(%q) = %v, want %v", tc.contentType, got, tc.want)
		}
	}
}

// TestGRPCUpstreamNeedsOneUpstream checks that -grpc-upstream is refused with several
// upstreams, where the balancer picks the peer.
func TestGRPCUpstreamNeedsOneUpstream(t *testing.T) {
	p := startGateway(t, "-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1,127.0.0.1:2", "-grpc-upstream", "127.0.0.1:3")
	select {
	case <-p.exited:
		if !strings.Contains(p.stderr.String(), "-grpc-upstream works with one -upstream") {
			t.Errorf("stderr: %s", p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway started with -grpc-upstream and several upstreams")
	}
}
