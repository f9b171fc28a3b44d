package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	ctls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// fileStamp identifies one version of a file, to notice replacements.
type fileStamp struct {
	path  string
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{path: path, size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}, nil
}

// readStamped reads a file and the stamp it had before the read. A file replaced during
// the read is noticed at the next check, since its stamp then differs.
func readStamped(path string) ([]byte, fileStamp, error) {
	st, err := stampOf(path)
	if err != nil {
		return nil, st, err
	}
	b, err := os.ReadFile(path)
	return b, st, err
}

// loadCertFile reads and parses one certificate with its key and OCSP staple.
func loadCertFile(cf CertFile) (*ctls.Certificate, []fileStamp, error) {
	certPEM, st1, err := readStamped(cf.CertFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, st2, err := readStamped(cf.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := ctls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s and %s: %w", cf.CertFile, cf.KeyFile, err)
	}
	// X509KeyPair sets Leaf since Go 1.23.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cf.CertFile, err)
		}
	}
	stamps := []fileStamp{st1, st2}
	if cf.OCSPFile != "" {
		der, st, err := readStamped(cf.OCSPFile)
		if err != nil {
			return nil, nil, err
		}
		if len(der) == 0 || der[0] != 0x30 { // a DER SEQUENCE
			return nil, nil, fmt.Errorf("%s: not a DER-encoded OCSP response", cf.OCSPFile)
		}
		cert.OCSPStaple = der
		stamps = append(stamps, st)
	}
	return &cert, stamps, nil
}

func loadCAFile(path string) (*x509.CertPool, fileStamp, error) {
	b, st, err := readStamped(path)
	if err != nil {
		return nil, st, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, st, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, st, nil
}

// changed reports whether any file differs from its stamp (or cannot be read).
func changed(stamps []fileStamp) bool {
	for _, s := range stamps {
		cur, err := stampOf(s.path)
		if err != nil || cur != s {
			return true
		}
	}
	return false
}

// SelfSigned returns a new self-signed ECDSA P-256 certificate and its key, PEM-encoded,
// valid for the given DNS names and IP addresses for validity (if zero, 30 days). It is
// meant for examples, tests and development, never for clients that must trust the
// proxy.
func SelfSigned(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("tls: SelfSigned needs at least one host")
	}
	if validity <= 0 {
		validity = 30 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Gotthard self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return certPEM, keyPEM, nil
}
