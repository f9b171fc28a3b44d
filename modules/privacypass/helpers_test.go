package privacypass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// The media types of RFC 9578 §6.1 and §6.2.
const (
	tokenRequestType  = "application/private-token-request"
	tokenResponseType = "application/private-token-response"
)

// testIssuer is a type 0x0002 issuer (RFC 9578 §6) with a fresh 2048-bit key, signing
// blinded token requests over HTTP as the RFC's issuance protocol does.
type testIssuer struct {
	name  string
	sk    *rsa.PrivateKey
	keyID [KeyIDSize]byte
	url   string // the issuer request URI, once served
}

func newTestIssuer(t testing.TB, name string) *testIssuer {
	t.Helper()
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, err := KeyID(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testIssuer{name: name, sk: sk, keyID: id}
}

func (is *testIssuer) pk() *rsa.PublicKey { return &is.sk.PublicKey }

// serve starts the issuer's HTTP endpoint on loopback until the test ends.
func (is *testIssuer) serve(t testing.TB) {
	srv := httptest.NewServer(http.HandlerFunc(is.handle))
	t.Cleanup(srv.Close)
	is.url = srv.URL + "/token-request"
}

// handle answers one TokenRequest over HTTP.
func (is *testIssuer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != tokenRequestType {
		http.Error(w, "want a POST of "+tokenRequestType, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sig, err := is.sign(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", tokenResponseType)
	w.Write(sig)
}

// sign answers one TokenRequest (token_type, truncated_token_key_id, blinded_msg) with
// the blind signature.
func (is *testIssuer) sign(req []byte) ([]byte, error) {
	if len(req) != 2+1+AuthenticatorSize || binary.BigEndian.Uint16(req) != TokenType {
		return nil, errors.New("malformed TokenRequest")
	}
	if req[2] != is.keyID[KeyIDSize-1] {
		return nil, errors.New("unknown token key")
	}
	return blindrsa.NewSigner(is.sk).BlindSign(req[3:])
}

// wwwAuthenticate is what a client reads from a 401: the challenge and the issuer key.
type wwwAuthenticate struct {
	challenge []byte
	parsed    *Challenge
	tokenKey  *rsa.PublicKey
	maxAge    string
}

var (
	challengeRE = regexp.MustCompile(`^PrivateToken challenge="([A-Za-z0-9_=-]+)", token-key="([A-Za-z0-9_=-]+)"(?:, max-age=([0-9]+))?$`)
)

// parseWWWAuthenticate reads a 401's header as a client would, independently of the
// module's own code, and checks what it decodes to.
func parseWWWAuthenticate(v string) (*wwwAuthenticate, error) {
	m := challengeRE.FindStringSubmatch(v)
	if m == nil {
		return nil, fmt.Errorf("WWW-Authenticate %q is not a PrivateToken challenge", v)
	}
	c, err := base64.URLEncoding.DecodeString(m[1])
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	k, err := base64.URLEncoding.DecodeString(m[2])
	if err != nil {
		return nil, fmt.Errorf("token-key: %w", err)
	}
	parsed, err := ParseChallenge(c)
	if err != nil {
		return nil, err
	}
	pk, err := ParsePublicKey(k)
	if err != nil {
		return nil, err
	}
	return &wwwAuthenticate{challenge: c, parsed: parsed, tokenKey: pk, maxAge: m[3]}, nil
}

// httpSigner returns a sign function that posts a TokenRequest to the issuer at url
// with client, as RFC 9578 §6.1 and §6.2 say.
func httpSigner(client *http.Client, url string) func([]byte) ([]byte, error) {
	return func(req []byte) ([]byte, error) {
		resp, err := client.Post(url, tokenRequestType, bytes.NewReader(req))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tokenResponseType {
			return nil, fmt.Errorf("issuer: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return body, nil
	}
}

// makeToken runs the client side of issuance (RFC 9578 §6.1 to §6.3) for challenge
// with the issuer's key pk: it blinds the token input, has sign sign the TokenRequest,
// and finalizes the token.
func makeToken(pk *rsa.PublicKey, challenge []byte, sign func([]byte) ([]byte, error)) (*Token, error) {
	var t Token
	if _, err := rand.Read(t.Nonce[:]); err != nil {
		return nil, err
	}
	t.ChallengeDigest = sha256.Sum256(challenge)
	id, err := KeyID(pk)
	if err != nil {
		return nil, err
	}
	t.KeyID = id
	c, err := blindrsa.NewClient(blindrsa.SHA384PSSDeterministic, pk)
	if err != nil {
		return nil, err
	}
	prepared, err := c.Prepare(rand.Reader, t.Input())
	if err != nil {
		return nil, err
	}
	blinded, state, err := c.Blind(rand.Reader, prepared)
	if err != nil {
		return nil, err
	}
	req := binary.BigEndian.AppendUint16(nil, TokenType)
	req = append(req, id[KeyIDSize-1])
	req = append(req, blinded...)
	sig, err := sign(req)
	if err != nil {
		return nil, err
	}
	sig, err = c.Finalize(state, sig)
	if err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	copy(t.Authenticator[:], sig)
	return &t, nil
}

// token makes a token for challenge in process: for unit tests and benchmarks.
func (is *testIssuer) token(t testing.TB, challenge []byte) *Token {
	t.Helper()
	tok, err := makeToken(is.pk(), challenge, is.sign)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
