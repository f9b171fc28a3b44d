package privacypass

import (
	"crypto"
	"crypto/rsa"
	"testing"

	"github.com/cloudflare/circl/blindsign/blindrsa"

	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// reset forgets every nonce, keeping the tables: benchmarks redeem a few tokens over and
// over.
func (s *nonceStore) reset() {
	for i := range s.shards {
		for g := range s.shards[i].gens {
			gen := &s.shards[i].gens[g]
			clear(gen.table)
			gen.used, gen.zero = 0, false
		}
	}
}

// BenchmarkRedeem is the module's work for a request with a valid token: parsing the
// Authorization value, finding the key and the challenge, checking the blind RSA
// signature and recording the nonce.
func BenchmarkRedeem(b *testing.B) {
	is := newTestIssuer(b, "issuer.example")
	// A small store, so that forgetting the tokens every len(authz) redemptions costs
	// little next to them.
	m, err := New(Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()},
		OriginInfo: []string{"origin.example"}, MaxNonces: 1024})
	if err != nil {
		b.Fatal(err)
	}
	w, err := parseWWWAuthenticate(m.challengeHeader(m.now(), nil))
	if err != nil {
		b.Fatal(err)
	}
	authz := make([]string, 256)
	for i := range authz {
		authz[i] = FormatAuthorization(is.token(b, w.challenge))
	}
	now := m.now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(authz) {
			m.store.reset()
			i = 0
		}
		if _, err := m.redeem(authz[i], now, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerify compares the signature check of circl's blind RSA verifier, which the
// module uses, with the standard library's RSASSA-PSS verification of the same token.
func BenchmarkVerify(b *testing.B) {
	is := newTestIssuer(b, "issuer.example")
	m, err := New(Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}})
	if err != nil {
		b.Fatal(err)
	}
	w, _ := parseWWWAuthenticate(m.challengeHeader(m.now(), nil))
	tok := is.token(b, w.challenge)
	input := tok.Input()
	b.Run("circl", func(b *testing.B) {
		v, _ := blindrsa.NewVerifier(blindrsa.SHA384PSSDeterministic, is.pk())
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Verify(input, tok.Authenticator[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
		b.ReportAllocs()
		for b.Loop() {
			h := crypto.SHA384.New()
			h.Write(input)
			if err := rsa.VerifyPSS(is.pk(), crypto.SHA384, h.Sum(nil), tok.Authenticator[:], opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseAuthorization(b *testing.B) {
	v := FormatAuthorization(sampleToken())
	var t Token
	b.ReportAllocs()
	for b.Loop() {
		if err := parseAuthorization(v, &t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxy is one HTTP/1.1 GET through a proxy on loopback: without the module,
// with the module skipping the request, refused with a challenge (no token), and refused
// after a signature check (a forged token, the work an attacker can make the proxy do).
// The origin's body and the 401's are the same length, so the cases differ only in the
// proxy's work.
func BenchmarkProxy(b *testing.B) {
	is := newTestIssuer(b, "issuer.example")
	forger := newTestIssuer(b, "issuer.example")
	bodySize := len(bodyUnauthorized)
	peer, err := proxy.NewPeer(proxytest.NewRawOrigin(b, bodySize))
	if err != nil {
		b.Fatal(err)
	}
	newModule := func(skip bool) *Module {
		m, err := New(Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()},
			Skip: func(*proxy.Session) bool { return skip }})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	serve := func(modules ...proxy.Module) string {
		svc := proxytest.NewService(b, "bench", proxytest.FixedPeer{Peer: peer}, proxy.ServiceOptions{Modules: modules})
		return proxytest.Serve(b, svc)
	}
	b.Run("no-module", func(b *testing.B) {
		proxytest.BenchmarkGet(b, serve(), "/", bodySize)
	})
	b.Run("skipped", func(b *testing.B) {
		proxytest.BenchmarkGet(b, serve(newModule(true)), "/", bodySize)
	})
	b.Run("no-token-401", func(b *testing.B) {
		proxytest.BenchmarkGet(b, serve(newModule(false)), "/", bodySize)
	})
	b.Run("forged-token-401", func(b *testing.B) {
		m := newModule(false)
		w, _ := parseWWWAuthenticate(m.challengeHeader(m.now(), nil))
		tok := forger.token(b, w.challenge)
		tok.KeyID = is.keyID // claims the real key: the signature check refuses it
		proxytest.BenchmarkGet(b, serve(m), "/", bodySize, "Authorization: "+FormatAuthorization(tok))
	})
}
