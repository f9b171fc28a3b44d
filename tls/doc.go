// Package tls terminates TLS for Gotthard's listening services: certificates from files
// chosen by SNI (exact and wildcard names, a default), a certificate callback, reload of
// the files without a restart, ALPN, session tickets with keys shareable across
// processes, OCSP stapling, client certificates (mutual TLS), post-quantum key exchange
// by default and a check of FIPS 140-3 settings at start-up.
//
// Programs that also use crypto/tls import this package as gtls:
//
//	import (
//		"crypto/tls"
//		gtls "github.com/gotthard-proxy/gotthard/tls"
//	)
//
//	cfg, err := gtls.New(gtls.Options{
//		Certificates: []gtls.CertFile{
//			{CertFile: "/etc/gw/example.com.pem", KeyFile: "/etc/gw/example.com.key"}, // the default
//			{CertFile: "/etc/gw/api.pem", KeyFile: "/etc/gw/api.key", OCSPFile: "/etc/gw/api.ocsp"},
//		},
//		ClientAuth:   tls.VerifyClientCertIfGiven,
//		ClientCAFile: "/etc/gw/clients-ca.pem",
//	})
//	if err != nil { ... }
//	svc.AddTLS("0.0.0.0:443", cfg) // proxy.Service
//	srv.Add(cfg)                   // reloads on file change and SIGHUP while the server runs
//
// # Defaults
//
// TLS 1.2 and 1.3 (Options.MinVersion makes a TLS-1.3-only listener); ALPN "h2" and "http/1.1"
// (HTTP/2 when the client offers it); key exchanges X25519MLKEM768 (preferred), X25519,
// P-256, P-384; crypto/tls's cipher suites; session tickets on, with keys rotated daily by
// crypto/tls unless a shared key file is given.
//
// The name (Options.Name) is "tls" unless set. It shows in two places: as the "tls"
// attribute of the Config's log lines (reloads, failures), and as its service name when
// it is added to a server.Server, where names must be unique. A program with two Configs
// on one Server must name them ("tls-public", "tls-admin"); the second Add of two unnamed
// ones fails with a duplicate service name "tls".
//
// # Reload
//
// The files are read into an immutable snapshot that handshakes reach through an atomic
// pointer; [Config.Reload] (called by [Config.Run] on SIGHUP or when a file changes) reads
// them into a new snapshot and swaps it in only if everything loads, so a reload neither
// fails nor delays a handshake, and a bad file keeps the old ones in use.
//
// # FIPS 140-3
//
// With GODEBUG=fips140=on, Go's crypto uses its FIPS 140-3 module and crypto/tls allows
// only approved algorithms: TLS 1.2 and 1.3, AES-GCM suites (and two AES-CBC-SHA256 ones
// for TLS 1.2), the key exchanges X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024
// and P-256/384/521 (not X25519 alone), and RSA (2048 bits or more), ECDSA (P-256/384/521)
// or Ed25519 keys. [New] refuses other settings and certificates at start-up with an error
// wrapping [ErrNotFIPSApproved], and [DefaultCurves] leaves X25519 out.
//
// # When not to use it
//
// For TLS on a plain net/http server, crypto/tls alone is enough; this package is for
// proxy listeners that must reload certificates and keep handshakes cheap.
package tls
