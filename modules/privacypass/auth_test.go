package privacypass

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func sampleToken() *Token {
	var t Token
	for i := range t.Nonce {
		t.Nonce[i] = byte(i)
		t.ChallengeDigest[i] = byte(i + 1)
		t.KeyID[i] = byte(i + 2)
	}
	for i := range t.Authenticator {
		t.Authenticator[i] = byte(i * 7)
	}
	return &t
}

func TestParseAuthorization(t *testing.T) {
	tok := sampleToken()
	raw, _ := tok.MarshalBinary()
	padded := base64.URLEncoding.EncodeToString(raw)
	unpadded := base64.RawURLEncoding.EncodeToString(raw)
	// A token is 354 bytes, a multiple of 3: it encodes without padding, but a client
	// that pads anyway is understood.
	padded += "=="
	type1 := append([]byte{0, 1}, raw[2:]...)
	tests := []struct {
		name  string
		value string
		want  error // nil: parses to tok
	}{
		{"canonical", FormatAuthorization(tok), nil},
		{"unpadded", `PrivateToken token="` + unpadded + `"`, nil},
		{"bare value", `PrivateToken token=` + unpadded, nil},
		{"bare padded value", `PrivateToken token=` + padded, nil},
		{"scheme case", `privatetoken TOKEN="` + padded + `"`, nil},
		{"other params", `PrivateToken foo=bar, token="` + padded + `", baz="q\"x"`, nil},
		{"whitespace", "  PrivateToken   token = \"" + padded + "\" , ", nil},
		{"quoted-pair", `PrivateToken token="` + padded[:10] + `\` + padded[10:] + `"`, nil},
		{"empty", "", ErrMalformed},
		{"scheme only", "PrivateToken", ErrMalformed},
		{"other scheme", `Bearer token="` + padded + `"`, ErrMalformed},
		{"basic", "Basic dXNlcjpwYXNz", ErrMalformed},
		{"no token param", `PrivateToken challenge="abc"`, ErrMalformed},
		{"two token params", `PrivateToken token="` + padded + `", token="` + padded + `"`, ErrMalformed},
		{"bad base64", `PrivateToken token="` + strings.Repeat("*", len(padded)) + `"`, ErrMalformed},
		{"std base64", `PrivateToken token="` + base64.StdEncoding.EncodeToString(raw) + `"`, ErrMalformed},
		{"truncated", `PrivateToken token="` + unpadded[:len(unpadded)-8] + `"`, ErrMalformed},
		{"too long", `PrivateToken token="` + unpadded + `AAAA"`, ErrMalformed},
		{"huge", `PrivateToken token="` + strings.Repeat("A", 5000) + `"`, ErrMalformed},
		{"wrong type", `PrivateToken token="` + base64.URLEncoding.EncodeToString(type1) + `"`, ErrTokenType},
		{"unclosed quote", `PrivateToken token="` + padded, ErrMalformed},
		{"no separator", `PrivateToken token="` + padded + `"x=y`, ErrMalformed},
		{"no value", `PrivateToken token=`, ErrMalformed},
		{"control byte", "PrivateToken token=\"\x01" + padded + `"`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.value)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != *tok {
				t.Fatal("parsed token differs")
			}
		})
	}
}

// TestParseAuthorizationNoAlloc: the request path parses without allocating.
func TestParseAuthorizationNoAlloc(t *testing.T) {
	v := FormatAuthorization(sampleToken())
	var tok Token
	if n := testing.AllocsPerRun(100, func() {
		if err := parseAuthorization(v, &tok); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	tok := sampleToken()
	raw, _ := tok.MarshalBinary()
	f.Add(FormatAuthorization(tok))
	f.Add(`PrivateToken token=` + base64.RawURLEncoding.EncodeToString(raw))
	f.Add(`PrivateToken a=b, token="` + base64.URLEncoding.EncodeToString(raw) + `", c="\"d"`)
	f.Add(`PrivateToken token="AAAA"`)
	f.Add(`Basic dXNlcjpwYXNz`)
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseAuthorization(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTokenType) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTokenType", err)
			}
			return
		}
		// What parses re-encodes to a value that parses to the same token.
		again, err := ParseAuthorization(FormatAuthorization(got))
		if err != nil || *again != *got {
			t.Fatalf("re-encoded token: %v", err)
		}
	})
}
