package privacypass

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
)

// Scheme is the HTTP authentication scheme of Privacy Pass (RFC 9577 §2).
const Scheme = "PrivateToken"

// maxAuthorization bounds the Authorization value the parser looks at: a token is 472
// base64url characters, so anything past a few hundred more is not one.
const maxAuthorization = 1024

// ParseAuthorization reads the token of an Authorization field value of the
// PrivateToken scheme (RFC 9577 §2.2):
//
//	PrivateToken token="<base64url of the token>"
//
// The scheme and parameter names are matched case-insensitively; the value may be a
// quoted string or a bare token, padded or not; other parameters are ignored. It fails
// with [ErrMalformed] for any other value (another scheme included) and [ErrTokenType]
// for a token of another type.
func ParseAuthorization(value string) (*Token, error) {
	t := new(Token)
	if err := parseAuthorization(value, t); err != nil {
		return nil, err
	}
	return t, nil
}

// parseAuthorization is ParseAuthorization into t, without allocating on success.
func parseAuthorization(value string, t *Token) error {
	if len(value) > maxAuthorization {
		return fmt.Errorf("%w: authorization of %d bytes", ErrMalformed, len(value))
	}
	v := trimOWS(value)
	scheme, params, _ := strings.Cut(v, " ")
	if !message.EqualFold(scheme, Scheme) {
		return fmt.Errorf("%w: authorization scheme is not %s", ErrMalformed, Scheme)
	}
	enc, found := "", false
	err := authParams(params, func(name, val string) error {
		if !message.EqualFold(name, "token") {
			return nil
		}
		if found {
			return fmt.Errorf("%w: two token parameters", ErrMalformed)
		}
		enc, found = val, true
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: no token parameter", ErrMalformed)
	}
	var buf [TokenSize + 3]byte // decoding may spill up to 2 bytes past a whole token
	n, err := decodeB64URL(buf[:], enc)
	if err != nil {
		return err
	}
	return t.parse(buf[:n])
}

// decodeB64URL decodes base64url with or without padding into dst, which must hold
// DecodedLen of the unpadded input.
func decodeB64URL(dst []byte, s string) (int, error) {
	s = strings.TrimRight(s, "=")
	if base64.RawURLEncoding.DecodedLen(len(s)) > len(dst) {
		return 0, fmt.Errorf("%w: token of %d base64url characters", ErrMalformed, len(s))
	}
	var src [maxAuthorization]byte // on the stack: a []byte(s) would be on the heap
	m := copy(src[:], s)
	n, err := base64.RawURLEncoding.Strict().Decode(dst, src[:m])
	if err != nil {
		return 0, fmt.Errorf("%w: token base64url: %w", ErrMalformed, err)
	}
	return n, nil
}

// authParams calls f with each auth-param of s (RFC 9110 §11.2):
//
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// separated by commas and optional whitespace. A bare value may end in "=" padding, as
// base64 does, although "=" is not a token character. Quoted values are unescaped.
func authParams(s string, f func(name, value string) error) error {
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return nil
		}
		i := 0
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == 0 {
			return fmt.Errorf("%w: authorization parameter name", ErrMalformed)
		}
		name := s[:i]
		s = trimOWS(s[i:])
		if s == "" || s[0] != '=' {
			return fmt.Errorf("%w: authorization parameter %q has no value", ErrMalformed, name)
		}
		s = trimOWS(s[1:])
		var val string
		if s != "" && s[0] == '"' {
			var err error
			val, s, err = quotedString(s)
			if err != nil {
				return err
			}
		} else {
			i = 0
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			for i < len(s) && s[i] == '=' {
				i++
			}
			if i == 0 {
				return fmt.Errorf("%w: authorization parameter %q has no value", ErrMalformed, name)
			}
			val, s = s[:i], s[i:]
		}
		if err := f(name, val); err != nil {
			return err
		}
		s = trimOWS(s)
		if s != "" && s[0] != ',' {
			return fmt.Errorf("%w: authorization parameters not separated by a comma", ErrMalformed)
		}
	}
}

// quotedString reads the quoted-string s starts with and returns its unescaped value and
// what follows it.
func quotedString(s string) (val, rest string, err error) {
	escaped := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			val = s[1:i]
			if escaped {
				val = unescape(val)
			}
			return val, s[i+1:], nil
		case c == '\\':
			if i+1 == len(s) || !isQdtext(s[i+1]) && s[i+1] != '"' && s[i+1] != '\\' {
				return "", "", fmt.Errorf("%w: authorization quoted-pair", ErrMalformed)
			}
			escaped = true
			i++
		case !isQdtext(c):
			return "", "", fmt.Errorf("%w: authorization quoted-string byte 0x%02x", ErrMalformed, c)
		}
	}
	return "", "", fmt.Errorf("%w: authorization quoted-string not closed", ErrMalformed)
}

func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isQdtext reports whether c may stand in a quoted-string unescaped (RFC 9110 §5.6.4),
// bytes past 0x7f excluded: a token never has them.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)
}

// isTchar reports whether c is a token character (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

// FormatAuthorization returns the Authorization field value that presents t.
func FormatAuthorization(t *Token) string {
	b, _ := t.MarshalBinary()
	return Scheme + ` token="` + base64.URLEncoding.EncodeToString(b) + `"`
}

// formatChallenge returns a WWW-Authenticate field value (RFC 9577 §2.1) from the
// base64url challenge and key, with max-age when maxAge > 0.
func formatChallenge(challenge, tokenKey string, maxAge int64) string {
	s := Scheme + ` challenge="` + challenge + `", token-key="` + tokenKey + `"`
	if maxAge > 0 {
		s += ", max-age=" + strconv.FormatInt(maxAge, 10)
	}
	return s
}
