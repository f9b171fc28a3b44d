// Command tls-gateway is a reverse proxy that terminates TLS, built on Gotthard.
//
// With no arguments it makes a self-signed certificate for localhost and 127.0.0.1,
// starts a demo origin on loopback and serves HTTPS on 127.0.0.1:6443 in front of it,
// printing a curl line to try:
//
//	go run ./examples/tls-gateway
//	go run ./examples/tls-gateway -cert site.pem -key site.key -upstream 127.0.0.1:8080
//	go run ./examples/tls-gateway -cert a.pem -key a.key -cert b.pem -key b.key   # SNI picks
//	go run ./examples/tls-gateway -client-ca clients.pem -require-client-cert      # mTLS
//
// Certificate files are reloaded when they change and on SIGHUP. Each request's access
// log line shows the TLS version, the key exchange group (X25519MLKEM768 for a
// post-quantum handshake), the SNI name, ALPN, whether the session was resumed and the
// client certificate's subject under mutual TLS. It also takes the server flags (-c
// conf.yaml, -d, -u, -t).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gotthard-proxy/gotthard/examples/internal/demo"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// gateway proxies every request to one upstream and logs each with its TLS details.
type gateway struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
	log  *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[struct{}] = (*gateway)(nil)

func (g *gateway) NewCtx() struct{} { return struct{}{} }

func (g *gateway) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return g.peer, nil
}

// Logging writes the access log line, with the TLS fields operators measure adoption by.
func (g *gateway) Logging(ctx context.Context, s *proxy.Session, _ struct{}, err error) {
	req, t := s.Request(), s.Timing()
	attrs := []any{
		"client", s.ClientAddr().String(),
		"method", req.Method,
		"target", req.Target,
		"status", s.Status(),
		"bytes", s.BytesSent(),
		"duration", t.End.Sub(t.Start),
	}
	attrs = append(attrs, tlsAttrs(s.TLS())...)
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	g.log.InfoContext(ctx, "access", attrs...)
}

// tlsAttrs returns the log attributes of a connection's TLS: version, group, cipher,
// SNI, ALPN, resumption and client subject.
func tlsAttrs(cs *tls.ConnectionState) []any {
	if cs == nil {
		return []any{"tls", false}
	}
	attrs := []any{
		"tls_version", tls.VersionName(cs.Version),
		"tls_group", cs.CurveID.String(),
		"tls_cipher", tls.CipherSuiteName(cs.CipherSuite),
		"sni", cs.ServerName,
		"alpn", cs.NegotiatedProtocol,
		"resumed", cs.DidResume,
	}
	if len(cs.VerifiedChains) > 0 {
		attrs = append(attrs, "client_subject", cs.VerifiedChains[0][0].Subject.String())
	}
	return attrs
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "tls-gateway:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout *os.File) error {
	fs := flag.NewFlagSet("tls-gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6443", "address to accept TLS clients on")
	upstream := fs.String("upstream", "", "origin HOST:PORT to proxy to (empty: start a demo origin)")
	var certs, keys listFlag
	fs.Var(&certs, "cert", "PEM certificate chain file; repeat with -key for several certificates chosen by SNI, the first being the default (none: a self-signed one)")
	fs.Var(&keys, "key", "PEM private key file, one per -cert")
	clientCA := fs.String("client-ca", "", "PEM file of CAs that client certificates are verified against (mutual TLS)")
	requireClient := fs.Bool("require-client-cert", false, "refuse clients without a valid certificate (needs -client-ca)")
	ticketKeys := fs.String("ticket-keys", "", "session ticket key file shared with other processes (created if missing)")
	tls13 := fs.Bool("tls13-only", false, "accept TLS 1.3 only")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(certs) != len(keys) {
		return fmt.Errorf("%d -cert flags but %d -key flags: give them in pairs", len(certs), len(keys))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}

	opts := gtls.Options{Logger: logger, TicketKeyFile: *ticketKeys, ClientCAFile: *clientCA}
	for i := range certs {
		opts.Certificates = append(opts.Certificates, gtls.CertFile{CertFile: certs[i], KeyFile: keys[i]})
	}
	selfSigned := ""
	if len(certs) == 0 {
		dir, err := os.MkdirTemp("", "tls-gateway")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cf, err := writeSelfSigned(dir)
		if err != nil {
			return err
		}
		opts.Certificates = []gtls.CertFile{cf}
		selfSigned = cf.CertFile
	}
	switch {
	case *requireClient:
		opts.ClientAuth = tls.RequireAndVerifyClientCert
	case *clientCA != "":
		opts.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if *tls13 {
		opts.MinVersion = tls.VersionTLS13
	}
	if *ticketKeys != "" {
		if _, err := os.Stat(*ticketKeys); errors.Is(err, os.ErrNotExist) {
			if err := gtls.RotateTicketKeyFile(*ticketKeys, 0); err != nil {
				return err
			}
		}
	}
	tcfg, err := gtls.New(opts)
	if err != nil {
		return err
	}

	target := *upstream
	if target == "" {
		origin, err := demo.Start("Gotthard")
		if err != nil {
			return err
		}
		defer origin.Close()
		target = origin.Addr()
	}
	peer, err := proxy.NewPeer(target)
	if err != nil {
		return err
	}
	g := &gateway{peer: peer, log: logger}
	svc, err := proxy.NewService("tls-gateway", g, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTLS(*listen, tcfg)
	if err := srv.Add(svc); err != nil {
		return err
	}
	if err := srv.Add(tcfg); err != nil { // reloads the files while the server runs
		return err
	}
	go func() {
		select {
		case <-srv.Ready():
		case <-srv.Done():
			return
		}
		addr := *listen
		if as := srv.Addrs("tls-gateway"); len(as) > 0 {
			addr = as[0].String()
		}
		fmt.Fprintf(stdout, "Gotthard TLS gateway on https://%s, in front of %s.\n", addr, target)
		if selfSigned != "" {
			fmt.Fprintf(stdout, "Self-signed certificate: %s\n", selfSigned)
			fmt.Fprintf(stdout, "Try:  curl -i --cacert %s https://%s/\n", selfSigned, addr)
		} else {
			fmt.Fprintf(stdout, "Try:  curl -i https://%s/\n", addr)
		}
		fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	}()
	return srv.Run()
}

// writeSelfSigned writes a self-signed certificate for localhost and 127.0.0.1 into dir.
func writeSelfSigned(dir string) (gtls.CertFile, error) {
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1", "::1"}, 0)
	if err != nil {
		return gtls.CertFile{}, err
	}
	cf := gtls.CertFile{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(cf.CertFile, certPEM, 0o644); err != nil {
		return cf, err
	}
	if err := os.WriteFile(cf.KeyFile, keyPEM, 0o600); err != nil {
		return cf, err
	}
	return cf, nil
}
