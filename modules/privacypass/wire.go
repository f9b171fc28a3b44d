package privacypass

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// TokenType is the token type this package redeems: publicly verifiable tokens with
// blind RSA (RSABSSA-SHA384-PSS-Deterministic, 2048-bit keys), RFC 9578 §6.
const TokenType uint16 = 0x0002

// Sizes of the parts of a type 0x0002 token (RFC 9577 §2.2, RFC 9578 §6).
const (
	NonceSize         = 32  // the client's random nonce
	DigestSize        = 32  // SHA-256 of the TokenChallenge
	KeyIDSize         = 32  // SHA-256 of the issuer's encoded public key
	AuthenticatorSize = 256 // the RSA signature, Nk for 2048-bit keys
	// TokenSize is the length of a whole encoded token.
	TokenSize = 2 + NonceSize + DigestSize + KeyIDSize + AuthenticatorSize
	// tokenInputSize is the signed prefix of a token: everything but the authenticator.
	tokenInputSize = TokenSize - AuthenticatorSize
)

// RedemptionContextSize is the length of a non-empty redemption context (RFC 9577 §2.1).
const RedemptionContextSize = 32

// keyBits is the only RSA modulus size of token type 0x0002 (Nk = 256).
const keyBits = 2048

// Errors returned by the parsers of this file.
var (
	// ErrMalformed reports bytes that are not a well-formed structure.
	ErrMalformed = errors.New("privacypass: malformed")
	// ErrTokenType reports a token or challenge of a type other than [TokenType].
	ErrTokenType = errors.New("privacypass: unsupported token type")
)

// Challenge is a TokenChallenge (RFC 9577 §2.1.1): what an origin asks a token to be
// bound to. Its encoding is hashed into every token that answers it.
type Challenge struct {
	// IssuerName is the name of the issuer the origin trusts, e.g. "issuer.example".
	IssuerName string
	// RedemptionContext is empty or [RedemptionContextSize] bytes.
	RedemptionContext []byte
	// OriginInfo lists the origin names the token is good for; empty means any origin.
	OriginInfo []string
}

// MarshalBinary encodes c with token type [TokenType]:
//
//	struct {
//	    uint16 token_type;
//	    opaque issuer_name<1..2^16-1>;
//	    opaque redemption_context<0..32>;
//	    opaque origin_info<0..2^16-1>;   // names joined with ","
//	} TokenChallenge;
func (c *Challenge) MarshalBinary() ([]byte, error) {
	origin := strings.Join(c.OriginInfo, ",")
	switch {
	case len(c.IssuerName) == 0 || len(c.IssuerName) > 0xffff:
		return nil, fmt.Errorf("%w: issuer name of %d bytes", ErrMalformed, len(c.IssuerName))
	case len(c.RedemptionContext) != 0 && len(c.RedemptionContext) != RedemptionContextSize:
		return nil, fmt.Errorf("%w: redemption context of %d bytes", ErrMalformed, len(c.RedemptionContext))
	case len(origin) > 0xffff:
		return nil, fmt.Errorf("%w: origin info of %d bytes", ErrMalformed, len(origin))
	}
	b := make([]byte, 0, 2+2+len(c.IssuerName)+1+len(c.RedemptionContext)+2+len(origin))
	b = binary.BigEndian.AppendUint16(b, TokenType)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.IssuerName)))
	b = append(b, c.IssuerName...)
	b = append(b, byte(len(c.RedemptionContext)))
	b = append(b, c.RedemptionContext...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(origin)))
	b = append(b, origin...)
	return b, nil
}

// ParseChallenge decodes a TokenChallenge of type [TokenType]. It fails with
// [ErrTokenType] for another type and [ErrMalformed] for bytes that do not hold exactly
// one well-formed challenge.
func ParseChallenge(b []byte) (*Challenge, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: challenge of %d bytes", ErrMalformed, len(b))
	}
	if t := binary.BigEndian.Uint16(b); t != TokenType {
		return nil, fmt.Errorf("%w: 0x%04x", ErrTokenType, t)
	}
	rest := b[2:]
	issuer, rest, ok := cut16(rest)
	if !ok || len(issuer) == 0 || len(rest) < 1 {
		return nil, fmt.Errorf("%w: challenge issuer name", ErrMalformed)
	}
	n := int(rest[0])
	if (n != 0 && n != RedemptionContextSize) || len(rest) < 1+n {
		return nil, fmt.Errorf("%w: challenge redemption context", ErrMalformed)
	}
	c := &Challenge{IssuerName: string(issuer)}
	if n > 0 {
		c.RedemptionContext = bytes.Clone(rest[1 : 1+n])
	}
	origin, rest, ok := cut16(rest[1+n:])
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: challenge origin info", ErrMalformed)
	}
	if len(origin) > 0 {
		c.OriginInfo = strings.Split(string(origin), ",")
	}
	return c, nil
}

// cut16 splits a uint16-length-prefixed vector off b.
func cut16(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// Token is a type 0x0002 token (RFC 9577 §2.2) as a client presents it.
type Token struct {
	// Nonce is the client's random nonce; it makes each token unique.
	Nonce [NonceSize]byte
	// ChallengeDigest is SHA-256 of the encoded [Challenge] the token answers.
	ChallengeDigest [DigestSize]byte
	// KeyID is [KeyID] of the issuer key that signed the token.
	KeyID [KeyIDSize]byte
	// Authenticator is the issuer's RSA signature over the rest of the token.
	Authenticator [AuthenticatorSize]byte
}

// MarshalBinary encodes t: token_type, nonce, challenge_digest, token_key_id,
// authenticator, in [TokenSize] bytes.
func (t *Token) MarshalBinary() ([]byte, error) {
	b := make([]byte, TokenSize)
	t.put(b)
	return b, nil
}

func (t *Token) put(b []byte) {
	binary.BigEndian.PutUint16(b, TokenType)
	n := 2
	n += copy(b[n:], t.Nonce[:])
	n += copy(b[n:], t.ChallengeDigest[:])
	n += copy(b[n:], t.KeyID[:])
	copy(b[n:], t.Authenticator[:])
}

// Input returns the bytes the issuer's signature covers (RFC 9578 §6.3): the encoded
// token without its authenticator.
func (t *Token) Input() []byte {
	b := make([]byte, TokenSize)
	t.put(b)
	return b[:tokenInputSize]
}

// ParseToken decodes an encoded token. It fails with [ErrTokenType] for a token of
// another type and [ErrMalformed] for one that is not [TokenSize] bytes long.
func ParseToken(b []byte) (*Token, error) {
	t := new(Token)
	if err := t.parse(b); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Token) parse(b []byte) error {
	if len(b) >= 2 {
		if typ := binary.BigEndian.Uint16(b); typ != TokenType {
			return fmt.Errorf("%w: 0x%04x", ErrTokenType, typ)
		}
	}
	if len(b) != TokenSize {
		return fmt.Errorf("%w: token of %d bytes, want %d", ErrMalformed, len(b), TokenSize)
	}
	n := 2
	n += copy(t.Nonce[:], b[n:])
	n += copy(t.ChallengeDigest[:], b[n:])
	n += copy(t.KeyID[:], b[n:])
	copy(t.Authenticator[:], b[n:])
	return nil
}

// pssAlgorithm is the DER AlgorithmIdentifier of RSASSA-PSS with SHA-384, MGF1 with
// SHA-384 and a 48-byte salt: how RFC 9578 §6.5 names a type 0x0002 issuer key.
var pssAlgorithm = []byte{
	0x30, 0x3d,
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, // id-RSASSA-PSS
	0x30, 0x30,
	0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, // sha384
	0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, // mgf1
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, // with sha384
	0xa2, 0x03, 0x02, 0x01, 0x30, // salt length 48
}

type spki struct {
	Algorithm asn1.RawValue
	PublicKey asn1.BitString
}

// MarshalPublicKey encodes an issuer public key as RFC 9578 §6.5 says: a DER
// SubjectPublicKeyInfo naming RSASSA-PSS (SHA-384, MGF1 SHA-384, salt 48). This is the
// token-key of a challenge and what [KeyID] hashes.
func MarshalPublicKey(pk *rsa.PublicKey) ([]byte, error) {
	if pk == nil || pk.N == nil {
		return nil, fmt.Errorf("%w: nil public key", ErrMalformed)
	}
	raw := x509.MarshalPKCS1PublicKey(pk)
	return asn1.Marshal(spki{
		Algorithm: asn1.RawValue{FullBytes: pssAlgorithm},
		PublicKey: asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)},
	})
}

// ParsePublicKey decodes an issuer public key encoded as [MarshalPublicKey] does (the
// token-key of an issuer directory, once base64url-decoded). A SubjectPublicKeyInfo
// naming plain rsaEncryption is accepted too.
func ParsePublicKey(der []byte) (*rsa.PublicKey, error) {
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: public key: not one SubjectPublicKeyInfo", ErrMalformed)
	}
	if bytes.Equal(k.Algorithm.FullBytes, pssAlgorithm) {
		if k.PublicKey.BitLength%8 != 0 {
			return nil, fmt.Errorf("%w: public key bit string", ErrMalformed)
		}
		pk, err := x509.ParsePKCS1PublicKey(k.PublicKey.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: public key: %w", ErrMalformed, err)
		}
		return pk, nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrMalformed, err)
	}
	pk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key: %T, not RSA", ErrMalformed, pub)
	}
	return pk, nil
}

// KeyID returns the token_key_id of an issuer key: SHA-256 of [MarshalPublicKey]'s
// encoding.
func KeyID(pk *rsa.PublicKey) ([KeyIDSize]byte, error) {
	der, err := MarshalPublicKey(pk)
	if err != nil {
		return [KeyIDSize]byte{}, err
	}
	return sha256.Sum256(der), nil
}
