package tls

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rsa"
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrNotFIPSApproved is wrapped by the errors of [New] for settings or keys that FIPS
// 140-3 mode does not allow.
var ErrNotFIPSApproved = errors.New("not approved in FIPS 140-3 mode (GODEBUG=fips140=on)")

// fipsCurve and fipsSuite mirror what crypto/tls allows when the fips140 GODEBUG is on
// (its defaults_fips140.go). It filters the rest out at handshake time, which would show
// up only as failed handshakes, so New refuses them up front instead.
func fipsCurve(c ctls.CurveID) bool {
	switch c {
	case ctls.X25519MLKEM768, ctls.SecP256r1MLKEM768, ctls.SecP384r1MLKEM1024,
		ctls.CurveP256, ctls.CurveP384, ctls.CurveP521:
		return true
	}
	return false
}

func fipsSuite(s uint16) bool {
	switch s {
	case ctls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		ctls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		ctls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		ctls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		ctls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		ctls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256:
		return true
	}
	return false
}

// DefaultCurves returns the key exchanges offered when [Options.Curves] is empty: the
// hybrid post-quantum X25519MLKEM768 (preferred by crypto/tls whenever both sides have
// it), then X25519, P-256 and P-384 for clients without it. In FIPS 140-3 mode X25519
// alone is not approved and is left out.
func DefaultCurves() []ctls.CurveID {
	if fips140.Enabled() {
		return []ctls.CurveID{ctls.X25519MLKEM768, ctls.CurveP256, ctls.CurveP384}
	}
	return []ctls.CurveID{ctls.X25519MLKEM768, ctls.X25519, ctls.CurveP256, ctls.CurveP384}
}

// checkFIPSOptions refuses, in FIPS 140-3 mode, key exchanges and cipher suites the mode
// does not allow. Versions below TLS 1.2 are refused in every mode.
func checkFIPSOptions(o *Options) error {
	if !fips140.Enabled() {
		return nil
	}
	for _, c := range o.Curves {
		if !fipsCurve(c) {
			return fmt.Errorf("tls: Options.Curves: %v is %w", c, ErrNotFIPSApproved)
		}
	}
	for _, s := range o.CipherSuites {
		if !fipsSuite(s) {
			return fmt.Errorf("tls: Options.CipherSuites: %s is %w", ctls.CipherSuiteName(s), ErrNotFIPSApproved)
		}
	}
	return nil
}

// checkFIPSCertificate refuses, in FIPS 140-3 mode, a certificate key the mode does not
// allow: RSA below 2048 bits, ECDSA on curves other than P-256, P-384 and P-521.
func checkFIPSCertificate(leaf *x509.Certificate) error {
	if !fips140.Enabled() {
		return nil
	}
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return fmt.Errorf("RSA key of %d bits is %w (2048 bits or more are)", k.N.BitLen(), ErrNotFIPSApproved)
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA key on %s is %w", k.Curve.Params().Name, ErrNotFIPSApproved)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("key type %T is %w", leaf.PublicKey, ErrNotFIPSApproved)
}
