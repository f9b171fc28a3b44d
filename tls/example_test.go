package tls_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// writeSelfSigned writes a throwaway certificate for localhost into dir.
func writeSelfSigned(dir string) (gtls.CertFile, []byte) {
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost"}, 0)
	if err != nil {
		panic(err)
	}
	cf := gtls.CertFile{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(cf.CertFile, certPEM, 0o600); err != nil {
		panic(err)
	}
	if err := os.WriteFile(cf.KeyFile, keyPEM, 0o600); err != nil {
		panic(err)
	}
	return cf, certPEM
}

func ExampleNew() {
	dir, err := os.MkdirTemp("", "gtls-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cf, certPEM := writeSelfSigned(dir)

	cfg, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{cf}})
	if err != nil {
		panic(err)
	}
	// The default name, "tls", is the Config's service name in a server.Server and the
	// "tls" attribute of its log lines; give each Config of one server its own.
	fmt.Println("name:", cfg.Name())
	fmt.Println("ALPN:", cfg.NextProtos())
	fmt.Println("certificate for:", cfg.Certificates()[0].Leaf.DNSNames)

	// A handshake over loopback, as a proxy's TLS endpoint does it.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg.ServerConfig())
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	defer func() { <-served }() // after conn.Close below
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	fmt.Println("negotiated:", st.NegotiatedProtocol, st.CurveID)
	// Output:
	// name: tls
	// ALPN: [h2 http/1.1]
	// certificate for: [localhost]
	// negotiated: h2 X25519MLKEM768
}

// A missing file is an error that names it, when the Config is made.
func ExampleNew_missingFile() {
	_, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}}})
	fmt.Println(err)
	// Output: tls: Options.Certificates[0]: stat /nonexistent/cert.pem: no such file or directory
}
