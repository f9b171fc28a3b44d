package privacypass

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// vector is a published type 0x0002 issuance test vector (the issuer.example /
// origin.example ones of RFC 9578 Appendix A.2), trimmed to what redemption needs.
type vector struct {
	PkS            string `json:"pkS"`
	TokenChallenge string `json:"token_challenge"`
	Nonce          string `json:"nonce"`
	Token          string `json:"token"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/type2-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectors checks the encodings and the signature check against tokens made by
// another implementation.
func TestVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		pkS, chal, tokb := unhex(t, v.PkS), unhex(t, v.TokenChallenge), unhex(t, v.Token)
		pk, err := ParsePublicKey(pkS)
		if err != nil {
			t.Fatalf("vector %d: ParsePublicKey: %v", i, err)
		}
		der, err := MarshalPublicKey(pk)
		if err != nil || !bytes.Equal(der, pkS) {
			t.Fatalf("vector %d: MarshalPublicKey = %x, %v; want pkS", i, der, err)
		}
		c, err := ParseChallenge(chal)
		if err != nil {
			t.Fatalf("vector %d: ParseChallenge: %v", i, err)
		}
		if c.IssuerName != "issuer.example" || len(c.OriginInfo) != 1 || c.OriginInfo[0] != "origin.example" {
			t.Errorf("vector %d: challenge %+v", i, c)
		}
		again, _ := c.MarshalBinary()
		if !bytes.Equal(again, chal) {
			t.Errorf("vector %d: challenge re-encodes as %x", i, again)
		}
		tok, err := ParseToken(tokb)
		if err != nil {
			t.Fatalf("vector %d: ParseToken: %v", i, err)
		}
		if id, _ := KeyID(pk); tok.KeyID != id {
			t.Errorf("vector %d: token key id %x, KeyID %x", i, tok.KeyID, id)
		}
		if tok.ChallengeDigest != sha256.Sum256(chal) {
			t.Errorf("vector %d: challenge digest differs", i)
		}
		if !bytes.Equal(tok.Nonce[:], unhex(t, v.Nonce)) {
			t.Errorf("vector %d: nonce differs", i)
		}
		again, _ = tok.MarshalBinary()
		if !bytes.Equal(again, tokb) {
			t.Errorf("vector %d: token re-encodes differently", i)
		}
		vf, _ := blindrsa.NewVerifier(blindrsa.SHA384PSSDeterministic, pk)
		if err := vf.Verify(tok.Input(), tok.Authenticator[:]); err != nil {
			t.Errorf("vector %d: signature: %v", i, err)
		}
		tok.Nonce[0] ^= 1
		if err := vf.Verify(tok.Input(), tok.Authenticator[:]); err == nil {
			t.Errorf("vector %d: signature verifies over a changed nonce", i)
		}
	}
}

// TestVectorRedeemed redeems the vector with an empty redemption context through a
// module configured as its origin, once.
func TestVectorRedeemed(t *testing.T) {
	vs := loadVectors(t)
	v := vs[1] // the one with an empty redemption context
	pk, err := ParsePublicKey(unhex(t, v.PkS))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{
		IssuerName:          "issuer.example",
		IssuerKeys:          []*rsa.PublicKey{pk},
		OriginInfo:          []string{"origin.example"},
		NoRedemptionContext: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(unhex(t, v.Token))
	authz := FormatAuthorization(tok)
	if _, err := m.redeem(authz, m.now(), nil); err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if _, err := m.redeem(authz, m.now(), nil); !errors.Is(err, errReplay) {
		t.Fatalf("second redeem: %v, want errReplay", err)
	}
	// The other vector has a redemption context this module never made.
	tok0, _ := ParseToken(unhex(t, vs[0].Token))
	if _, err := m.redeem(FormatAuthorization(tok0), m.now(), nil); !errors.Is(err, errChallenge) {
		t.Fatalf("redeem of vector 0: %v, want errChallenge", err)
	}
	// Another origin's module refuses it.
	other, err := New(Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{pk}, OriginInfo: []string{"other.example"}, NoRedemptionContext: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ = ParseToken(unhex(t, v.Token))
	if _, err := other.redeem(FormatAuthorization(tok), other.now(), nil); !errors.Is(err, errChallenge) {
		t.Fatalf("redeem for another origin: %v, want errChallenge", err)
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	rc := bytes.Repeat([]byte{7}, RedemptionContextSize)
	for _, c := range []Challenge{
		{IssuerName: "i"},
		{IssuerName: "issuer.example", RedemptionContext: rc},
		{IssuerName: "issuer.example", OriginInfo: []string{"a.example", "b.example"}},
	} {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseChallenge(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.IssuerName != c.IssuerName || !bytes.Equal(got.RedemptionContext, c.RedemptionContext) || len(got.OriginInfo) != len(c.OriginInfo) {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := (&Challenge{IssuerName: "issuer.example", OriginInfo: []string{"o"}}).MarshalBinary()
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"challenge empty", nil, ErrMalformed},
		{"challenge type 1", append([]byte{0, 1}, good[2:]...), ErrTokenType},
		{"challenge truncated", good[:len(good)-1], ErrMalformed},
		{"challenge trailing", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"challenge empty issuer", []byte{0, 2, 0, 0, 0, 0, 0}, ErrMalformed},
		{"challenge context of 5", []byte{0, 2, 0, 1, 'i', 5, 1, 2, 3, 4, 5, 0, 0}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseChallenge(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("ParseChallenge: %v, want %v", err, tt.want)
			}
		})
	}
	tok := make([]byte, TokenSize)
	tok[1] = 2
	if _, err := ParseToken(tok[:TokenSize-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseToken of a short token: %v", err)
	}
	tok[1] = 1
	if _, err := ParseToken(tok); !errors.Is(err, ErrTokenType) {
		t.Errorf("ParseToken of type 1: %v", err)
	}
	if _, err := ParsePublicKey([]byte{0x30, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParsePublicKey of junk: %v", err)
	}
}

func FuzzParseChallenge(f *testing.F) {
	for _, c := range []Challenge{
		{IssuerName: "issuer.example", OriginInfo: []string{"a", "b"}},
		{IssuerName: "i", RedemptionContext: bytes.Repeat([]byte{9}, RedemptionContextSize)},
	} {
		b, _ := c.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTokenType) {
				t.Fatalf("error %v", err)
			}
			return
		}
		// What parses re-encodes to the same bytes.
		again, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x, %v", b, again, err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	for _, v := range []string{
		"30820152303d06092a864886f70d01010a3030a00d300b0609608648016503040202a11a301806092a864886f70d010108300b0609608648016503040202a2030201300382010f003082010a0282010100cb1aed6b6a95f5b1ce013a4cfcab25b94b2e64a23034e4250a7eab43c0df3a8c12993af12b111908d4b471bec31d4b6c9ad9cdda90612a2ee903523e6de5a224d6b02f09e5c374d0cfe01d8f529c500a78a2f67908fa682b5a2b430c81eaf1af72d7b5e794fc98a3139276879757ce453b526ef9bf6ceb99979b8423b90f4461a22af37aab0cf5733f7597abe44d31c732db68a181c6cbbe607d8c0e52e0655fd9996dc584eca0be87afbcd78a337d17b1dba9e828bbd81e291317144e7ff89f55619709b096cbb9ea474cead264c2073fe49740c01f00e109106066983d21e5f83f086e2e823c879cd43cef700d2a352a9babd612d03cad02db134b7e225a5f0203010001",
	} {
		b, _ := hex.DecodeString(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, err := ParsePublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if _, err := MarshalPublicKey(pk); err != nil {
			t.Fatal(err)
		}
	})
}
