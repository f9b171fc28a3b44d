package tls

import (
	ctls "crypto/tls"
	"log/slog"
	"time"
)

// Options configures a [Config]. Zero fields mean the default given for each. Options is
// passed by value to [New], which copies the slices it keeps.
type Options struct {
	// Name identifies the Config in logs and, when the Config runs as a background
	// service of a server.Server, among the Server's services. If empty, "tls".
	Name string
	// Logger receives reload and rejection logs. If nil, slog.Default().
	Logger *slog.Logger

	// Certificates are the certificates read from files. The first one is the default
	// certificate, served when the client sends no server name (SNI) or one that no
	// certificate matches. New fails if there are none and GetCertificate is nil.
	Certificates []CertFile

	// GetCertificate, if not nil, chooses or fetches the certificate for each handshake,
	// with the client hello in hand (hello.ServerName, hello.SupportedProtos,
	// hello.Conn.RemoteAddr(), hello.Context()). It runs first; a nil certificate with a
	// nil error falls back to Certificates, and an error fails the handshake. It is
	// called concurrently from many handshakes and must be safe for that. It runs on the
	// handshake's goroutine within the listener's handshake timeout: fetch slow
	// certificates with hello.Context().
	GetCertificate func(hello *ctls.ClientHelloInfo) (*ctls.Certificate, error)

	// ALPN lists the application protocols offered, most preferred first. If empty,
	// ["h2", "http/1.1"]: HTTP/2 when the client offers it, else HTTP/1.1.
	ALPN []string

	// MinVersion is the lowest TLS version accepted. If zero, TLS 1.2. Set it to
	// crypto/tls.VersionTLS13 for a TLS-1.3-only listener. Versions below TLS 1.2 are
	// refused.
	MinVersion uint16
	// Curves are the key exchanges offered, in any order (crypto/tls applies its own
	// preference, which puts the hybrid post-quantum X25519MLKEM768 first). If empty,
	// [DefaultCurves]: X25519MLKEM768, X25519, P-256 and P-384 (without X25519 in FIPS
	// 140-3 mode).
	Curves []ctls.CurveID
	// CipherSuites are the TLS 1.2 cipher suites accepted (TLS 1.3 suites are not
	// configurable). If empty, crypto/tls's defaults (ECDHE with AES-GCM or
	// ChaCha20-Poly1305), filtered to the approved ones in FIPS 140-3 mode.
	CipherSuites []uint16

	// ClientAuth asks clients for a certificate (mutual TLS): crypto/tls.RequestClientCert,
	// RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert. If zero
	// (NoClientCert), no certificate is asked for. The verifying modes need ClientCAFile.
	// The verified chain is visible to the phases through the proxy's Session.TLS.
	ClientAuth ctls.ClientAuthType
	// ClientCAFile is a PEM file of the CA certificates that client certificates are
	// verified against. It is reloaded with the certificates.
	ClientCAFile string

	// DisableSessionTickets turns session resumption by tickets off. By default tickets
	// are on, with keys that crypto/tls makes and rotates itself (a new key each day,
	// tickets valid for up to 7 days) unless TicketKeyFile is set.
	DisableSessionTickets bool
	// TicketKeyFile, if not empty, is a file of session ticket keys shared by every
	// process that serves the same clients (for example the old and new process in an
	// upgrade, or several machines behind one address), so a ticket issued by one
	// resumes on another. It holds one or more 32-byte keys, concatenated (raw bytes),
	// newest first: the first encrypts new tickets, all decrypt. [RotateTicketKeyFile]
	// adds a key and drops the oldest; the file is reloaded with the certificates. The
	// file must be readable only by the proxy's user.
	TicketKeyFile string

	// WatchInterval is how often [Config.Run] checks the files for changes. If zero, 2s;
	// negative means the files are not watched (reload on SIGHUP or with [Config.Reload]
	// only).
	WatchInterval time.Duration
	// NoSIGHUP stops [Config.Run] from reloading on SIGHUP.
	NoSIGHUP bool
	// OnReload, if not nil, is called after each reload attempt with its result (nil
	// when the new files are in use; otherwise the old ones stay in use).
	OnReload func(err error)
}

// CertFile names the files of one certificate.
type CertFile struct {
	// CertFile is a PEM file with the certificate chain, leaf first. RSA (2048 bits or
	// more), ECDSA (P-256, P-384, P-521) and Ed25519 keys are accepted.
	CertFile string
	// KeyFile is a PEM file with the private key (PKCS #1, PKCS #8 or SEC 1).
	KeyFile string
	// OCSPFile, if not empty, is a DER-encoded OCSP response stapled to handshakes that
	// ask for it. It is reloaded with the certificate; an operator refreshes it (for
	// example with `openssl ocsp -respout`) before it expires.
	OCSPFile string
	// Names are the server names (SNI) the certificate is served for: exact names
	// ("api.example.com") or wildcards ("*.example.com", which matches one label). If
	// empty, the DNS names of the certificate's subject alternative names.
	Names []string
}

// DefaultALPN is the protocol list offered when [Options.ALPN] is empty.
func DefaultALPN() []string { return []string{"h2", "http/1.1"} }
