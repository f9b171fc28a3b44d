package tls

import (
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoCertificate is the handshake error when no certificate can be served.
var ErrNoCertificate = errors.New("tls: no certificate for this client")

// Config is a server-side TLS configuration whose files can be reloaded while it serves:
// certificates (chosen by SNI), OCSP staples, the client CA pool and session ticket keys.
// Handshakes read an immutable snapshot of the files through an atomic pointer, so a
// reload never fails or blocks a handshake; handshakes that started before a reload
// finish with the old files.
//
// Hand [Config.ServerConfig] to crypto/tls.Server (the proxy does so for endpoints added
// with AddTLS). Run watches the files and reloads on SIGHUP; add the Config to a
// server.Server as a background service to have it run. A Config is safe for concurrent
// use.
type Config struct {
	name  string
	opts  Options
	log   *slog.Logger
	base  *ctls.Config
	snap  atomic.Pointer[snapshot]
	relMu sync.Mutex // serializes reloads
}

// snapshot is one immutable generation of the files.
type snapshot struct {
	cfg   *ctls.Config // returned to each handshake by GetConfigForClient
	certs []*ctls.Certificate
	exact map[string][]*ctls.Certificate // lower-case name
	wild  map[string][]*ctls.Certificate // "*.example.com" stored as "example.com"
	stamp []fileStamp                    // the files as read, to notice changes
}

// New validates opts, reads the files and returns the Config. Errors name the bad field
// or file. In FIPS 140-3 mode (GODEBUG=fips140=on) it also refuses settings and keys the
// mode does not allow; see [CheckFIPS].
func New(opts Options) (*Config, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Name == "" {
		opts.Name = "tls"
	}
	opts.Certificates = cloneCertFiles(opts.Certificates)
	opts.ALPN = append([]string(nil), opts.ALPN...)
	if len(opts.ALPN) == 0 {
		opts.ALPN = DefaultALPN()
	}
	opts.Curves = append([]ctls.CurveID(nil), opts.Curves...)
	if len(opts.Curves) == 0 {
		opts.Curves = DefaultCurves()
	}
	opts.CipherSuites = append([]uint16(nil), opts.CipherSuites...)
	if opts.MinVersion == 0 {
		opts.MinVersion = ctls.VersionTLS12
	}
	if err := validate(&opts); err != nil {
		return nil, err
	}
	c := &Config{name: opts.Name, opts: opts, log: opts.Logger.With("tls", opts.Name)}
	c.base = &ctls.Config{
		MinVersion:             opts.MinVersion,
		SessionTicketsDisabled: opts.DisableSessionTickets,
		GetConfigForClient:     c.configForClient,
	}
	snap, err := c.load()
	if err != nil {
		return nil, err
	}
	c.snap.Store(snap)
	return c, nil
}

func validate(o *Options) error {
	if len(o.Certificates) == 0 && o.GetCertificate == nil {
		return errors.New("tls: Options.Certificates is empty and Options.GetCertificate is nil")
	}
	for i, cf := range o.Certificates {
		if cf.CertFile == "" || cf.KeyFile == "" {
			return fmt.Errorf("tls: Options.Certificates[%d]: CertFile and KeyFile are both needed", i)
		}
	}
	if o.MinVersion != ctls.VersionTLS12 && o.MinVersion != ctls.VersionTLS13 {
		return fmt.Errorf("tls: Options.MinVersion %#04x: only TLS 1.2 (0x0303) and TLS 1.3 (0x0304) are accepted", o.MinVersion)
	}
	for _, p := range o.ALPN {
		if p == "" || len(p) > 255 {
			return fmt.Errorf("tls: Options.ALPN: invalid protocol name %q", p)
		}
	}
	switch o.ClientAuth {
	case ctls.NoClientCert, ctls.RequestClientCert, ctls.RequireAnyClientCert:
	case ctls.VerifyClientCertIfGiven, ctls.RequireAndVerifyClientCert:
		if o.ClientCAFile == "" {
			return fmt.Errorf("tls: Options.ClientAuth %v verifies client certificates: Options.ClientCAFile is needed", o.ClientAuth)
		}
	default:
		return fmt.Errorf("tls: Options.ClientAuth: unknown mode %d", o.ClientAuth)
	}
	if o.DisableSessionTickets && o.TicketKeyFile != "" {
		return errors.New("tls: Options.TicketKeyFile is set but Options.DisableSessionTickets turns tickets off")
	}
	return checkFIPSOptions(o)
}

// Name returns the Config's name: Options.Name, or "tls" if that was empty. It is the
// Config's service name in a server.Server (so two Configs on one Server need distinct
// names) and the value of the "tls" attribute on its log lines.
func (c *Config) Name() string { return c.name }

// ServerConfig returns the crypto/tls configuration to serve with. It is the same value
// on every call; each handshake gets the current files through its GetConfigForClient.
// Do not change it.
func (c *Config) ServerConfig() *ctls.Config { return c.base }

// NextProtos returns the ALPN protocols the Config offers, most preferred first.
func (c *Config) NextProtos() []string { return append([]string(nil), c.opts.ALPN...) }

// Certificates returns the certificates in use now, parsed (Leaf is set), in the order
// of Options.Certificates. The caller must not change them.
func (c *Config) Certificates() []*ctls.Certificate {
	return append([]*ctls.Certificate(nil), c.snap.Load().certs...)
}

// CheckCertificates reports each certificate in use that is not valid at now (expired,
// or not valid yet), naming it by its DNS names (or subject common name) and the time;
// the errors are joined, nil when every certificate is valid. A service's Check
// (server.Checker) calls it for its TLS endpoints.
func (c *Config) CheckCertificates(now time.Time) error {
	var errs []error
	for _, cert := range c.snap.Load().certs {
		leaf := cert.Leaf
		if leaf == nil {
			continue
		}
		name := leaf.Subject.CommonName
		if len(leaf.DNSNames) > 0 {
			name = strings.Join(leaf.DNSNames, ",")
		}
		switch {
		case now.After(leaf.NotAfter):
			errs = append(errs, fmt.Errorf("certificate for %s expired at %s", name, leaf.NotAfter.UTC().Format(time.RFC3339)))
		case now.Before(leaf.NotBefore):
			errs = append(errs, fmt.Errorf("certificate for %s is not valid before %s", name, leaf.NotBefore.UTC().Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}

// Reload reads the files again and, if they all load and check, makes handshakes use them
// from now on. If anything fails, the files in use stay in use and the error says why.
func (c *Config) Reload() error {
	c.relMu.Lock()
	defer c.relMu.Unlock()
	snap, err := c.load()
	if err == nil {
		c.snap.Store(snap)
		c.log.Info("tls: files reloaded", "certificates", len(snap.certs))
	} else {
		c.log.Warn("tls: reload failed; keeping the files in use", "err", err)
	}
	if c.opts.OnReload != nil {
		c.opts.OnReload(err)
	}
	return err
}

// load reads every file into a new snapshot.
func (c *Config) load() (*snapshot, error) {
	o := &c.opts
	s := &snapshot{exact: map[string][]*ctls.Certificate{}, wild: map[string][]*ctls.Certificate{}}
	for i, cf := range o.Certificates {
		cert, stamps, err := loadCertFile(cf)
		if err != nil {
			return nil, fmt.Errorf("tls: Options.Certificates[%d]: %w", i, err)
		}
		if err := checkFIPSCertificate(cert.Leaf); err != nil {
			return nil, fmt.Errorf("tls: Options.Certificates[%d] %s: %w", i, cf.CertFile, err)
		}
		s.stamp = append(s.stamp, stamps...)
		s.certs = append(s.certs, cert)
		names := cf.Names
		if len(names) == 0 {
			names = cert.Leaf.DNSNames
		}
		for _, n := range names {
			n = normalizeName(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				s.wild[rest] = append(s.wild[rest], cert)
			} else if n != "" {
				s.exact[n] = append(s.exact[n], cert)
			}
		}
	}
	cfg := &ctls.Config{
		MinVersion:             o.MinVersion,
		CurvePreferences:       o.Curves,
		CipherSuites:           o.CipherSuites,
		NextProtos:             o.ALPN,
		ClientAuth:             o.ClientAuth,
		SessionTicketsDisabled: o.DisableSessionTickets,
		GetCertificate:         c.getCertificate,
	}
	if o.ClientCAFile != "" {
		pool, st, err := loadCAFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: Options.ClientCAFile: %w", err)
		}
		cfg.ClientCAs = pool
		s.stamp = append(s.stamp, st)
	}
	if o.TicketKeyFile != "" {
		keys, st, err := readTicketKeys(o.TicketKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: Options.TicketKeyFile: %w", err)
		}
		// Set on the snapshot's config, which crypto/tls then prefers over the base's
		// automatic keys, so old and new keys switch together with the snapshot.
		cfg.SetSessionTicketKeys(keys)
		s.stamp = append(s.stamp, st)
	}
	s.cfg = cfg
	return s, nil
}

func (c *Config) configForClient(*ctls.ClientHelloInfo) (*ctls.Config, error) {
	return c.snap.Load().cfg, nil
}

// getCertificate chooses the certificate of one handshake: the callback's, else an exact
// SNI match, else a wildcard match, else the default. Among several certificates for one
// name it takes the first the client supports (say ECDSA before RSA when both are
// configured in that order).
func (c *Config) getCertificate(hello *ctls.ClientHelloInfo) (*ctls.Certificate, error) {
	if c.opts.GetCertificate != nil {
		cert, err := c.opts.GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate callback: %w", err)
		}
		if cert != nil {
			return cert, nil
		}
	}
	s := c.snap.Load()
	if len(s.certs) == 0 {
		return nil, ErrNoCertificate
	}
	if hello.ServerName != "" {
		name := normalizeName(hello.ServerName)
		if cs, ok := s.exact[name]; ok {
			return pick(hello, cs), nil
		}
		if _, rest, ok := strings.Cut(name, "."); ok {
			if cs, ok := s.wild[rest]; ok {
				return pick(hello, cs), nil
			}
		}
	}
	return pick(hello, s.certs), nil
}

func pick(hello *ctls.ClientHelloInfo, cs []*ctls.Certificate) *ctls.Certificate {
	if len(cs) > 1 {
		for _, c := range cs {
			if hello.SupportsCertificate(c) == nil {
				return c
			}
		}
	}
	return cs[0]
}

// normalizeName lower-cases an ASCII host name and drops a trailing dot.
func normalizeName(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if 'A' <= n[i] && n[i] <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

func cloneCertFiles(in []CertFile) []CertFile {
	out := make([]CertFile, len(in))
	for i, cf := range in {
		cf.Names = append([]string(nil), cf.Names...)
		out[i] = cf
	}
	return out
}

// LoadCAFile reads a PEM file of CA certificates into a pool, for example for
// proxy.PeerTLS.RootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	p, _, err := loadCAFile(path)
	return p, err
}
