package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
)

// TestGRPCInterop runs grpc-go's interop client cases through the gateway binary as a
// user runs it, `gateway -upstream ADDR -upstream-proto h2c`, in front of grpc-go's
// interop TestService served over h2c on loopback. The client reaches the gateway over
// h2c by prior knowledge on its plain listener, and over TLS (ALPN h2) on its TLS
// listener. Every case runs 20 rounds in a row, rpc_soak and channel_soak included.
//
// The interop functions end the test binary with grpclog's Fatal on a failure;
// [fatalReport] first prints which case of which round failed, and the gateway's log.
func TestGRPCInterop(t *testing.T) {
	report := grpcLogger() // before any gRPC code runs

	origin := grpcinterop.StartServer(t)

	dir := t.TempDir()
	certPEM, cert, key := certFiles(t, dir, "gw.test")
	plain, secure := freeAddr(t), freeAddr(t)
	gw := startGateway(t, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key,
		"-upstream", origin, "-upstream-proto", "h2c")
	for _, addr := range []string{plain, secure} {
		gw.waitAccepting(t, addr)
	}
	defer report.start(gw)()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tlsCreds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "gw.test"})
	for _, tc := range []struct {
		name  string
		addr  string
		creds credentials.TransportCredentials
		alpn  string // the protocol the TLS handshake must choose; empty without TLS
	}{
		{"h2c", plain, insecure.NewCredentials(), ""},
		{"tls", secure, tlsCreds, "h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := grpc.WithTransportCredentials(tc.creds)
			conn, err := grpc.NewClient(tc.addr, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			checkALPN(ctx, t, conn, tc.alpn)
			runInterop(ctx, t, report, tc.name, tc.addr, conn, opt)
		})
	}
}

// checkALPN makes one call on conn and checks the protocol its TLS handshake chose.
func checkALPN(ctx context.Context, t *testing.T, conn *grpc.ClientConn, want string) {
	t.Helper()
	var p peer.Peer
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(ctx, &testgrpc.Empty{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	got := ""
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		got = info.State.NegotiatedProtocol
	}
	if got != want {
		t.Fatalf("ALPN chose %q, want %q", got, want)
	}
}

// runInterop runs every interop case 20 rounds in a row on conn, a client of the gateway
// at addr; channel_soak opens its own connections with opt.
func runInterop(ctx context.Context, t *testing.T, report *fatalReport, mode, addr string, conn *grpc.ClientConn, opt grpc.DialOption) {
	soak := func(channel func() (*grpc.ClientConn, func())) {
		interop.DoSoakTest(ctx, interop.SoakTestConfig{
			RequestSize:  271828, // the interop client's defaults, as large_unary
			ResponseSize: 314159,
			// Generous: the race detector on two shared cores. A slow iteration is a
			// failure, and no failure is allowed.
			PerIterationMaxAcceptableLatency: 5 * time.Second,
			OverallTimeout:                   time.Minute,
			ServerAddr:                       addr,
			NumWorkers:                       1,
			Iterations:                       10,
			ChannelForTest:                   channel,
		})
	}
	cases := append(grpcinterop.Cases(ctx, conn), []grpcinterop.Case{
		{Name: "rpc_soak", Run: func() {
			soak(func() (*grpc.ClientConn, func()) { return conn, func() {} })
		}},
		{Name: "channel_soak", Run: func() {
			soak(func() (*grpc.ClientConn, func()) {
				cc, err := grpc.NewClient(addr, opt)
				if err != nil { // on the soak's goroutine, where t.Fatal may not be called
					grpclog.Fatalf("grpc.NewClient: %v", err)
				}
				return cc, func() { cc.Close() }
			})
		}},
	}...)
	for round := range 20 {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				report.at(fmt.Sprintf("%s, round %d of 20, %s", mode, round+1, c.Name))
				c.Run()
			})
		}
	}
}

// grpcLogger makes a [fatalReport] grpclog's logger, once: grpclog's logger must be set
// before any gRPC code runs, and is not synchronised.
var grpcLogger = sync.OnceValue(func() *fatalReport {
	r := &fatalReport{LoggerV2: grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr)}
	grpclog.SetLoggerV2(r)
	return r
})

// fatalReport is grpclog's logger during [TestGRPCInterop]. The interop functions report
// a failure with grpclog's Fatal, which exits the test binary before the test can log
// anything; the Fatal methods of fatalReport first print the case that failed and the
// gateway's log. It is safe for concurrent use.
type fatalReport struct {
	grpclog.LoggerV2 // for everything else, and to exit

	mu    sync.Mutex
	gw    *gatewayProc // nil outside the test
	where string       // the case running
}

// start makes Fatal report on gw until the returned function is called.
func (r *fatalReport) start(gw *gatewayProc) (stop func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gw = gw
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.gw = nil
	}
}

// at records the case about to run.
func (r *fatalReport) at(where string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.where = where
}

func (r *fatalReport) report(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gw == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "--- FAIL: TestGRPCInterop (%s): %s\ngateway stderr:\n%s\n", r.where, msg, r.gw.stderr.String())
}

// Fatal reports the failure, then logs args and exits.
func (r *fatalReport) Fatal(args ...any) {
	r.report(fmt.Sprint(args...))
	r.LoggerV2.Fatal(args...)
}

// Fatalln reports the failure, then logs args and exits.
func (r *fatalReport) Fatalln(args ...any) {
	r.report(fmt.Sprint(args...))
	r.LoggerV2.Fatalln(args...)
}

// Fatalf reports the failure, then logs the message and exits.
func (r *fatalReport) Fatalf(format string, args ...any) {
	r.report(fmt.Sprintf(format, args...))
	r.LoggerV2.Fatalf(format, args...)
}
