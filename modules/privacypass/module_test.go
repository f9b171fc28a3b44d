package privacypass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/proxy"
)

func TestOptionsValidated(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	keys := []*rsa.PublicKey{is.pk()}
	tests := []struct {
		name  string
		opts  Options
		field string // "" means valid
	}{
		{"minimal", Options{IssuerName: "i.example", IssuerKeys: keys}, ""},
		{"full", Options{IssuerName: "i.example", IssuerKeys: keys, OriginInfo: []string{"a.example", "b.example"},
			Window: time.Minute, ContextSecret: make([]byte, 32), MaxNonces: 10}, ""},
		{"no issuer name", Options{IssuerKeys: keys}, "Options.IssuerName"},
		{"issuer name with space", Options{IssuerName: "i example", IssuerKeys: keys}, "Options.IssuerName"},
		{"issuer name with comma", Options{IssuerName: "i,example", IssuerKeys: keys}, "Options.IssuerName"},
		{"issuer name too long", Options{IssuerName: strings.Repeat("a", 256), IssuerKeys: keys}, "Options.IssuerName"},
		{"no keys", Options{IssuerName: "i"}, "Options.IssuerKeys"},
		{"nil key", Options{IssuerName: "i", IssuerKeys: []*rsa.PublicKey{nil}}, "Options.IssuerKeys[0]"},
		{"1024-bit key", Options{IssuerName: "i", IssuerKeys: []*rsa.PublicKey{is.pk(), &small.PublicKey}}, "Options.IssuerKeys[1]"},
		{"same key twice", Options{IssuerName: "i", IssuerKeys: []*rsa.PublicKey{is.pk(), is.pk()}}, "Options.IssuerKeys[1]"},
		{"empty origin", Options{IssuerName: "i", IssuerKeys: keys, OriginInfo: []string{"a", ""}}, "Options.OriginInfo[1]"},
		{"origin with comma", Options{IssuerName: "i", IssuerKeys: keys, OriginInfo: []string{"a,b"}}, "Options.OriginInfo[0]"},
		{"origins too long", Options{IssuerName: "i", IssuerKeys: keys, OriginInfo: []string{strings.Repeat("a", 40000), strings.Repeat("b", 40000)}}, "Options.OriginInfo"},
		{"window too short", Options{IssuerName: "i", IssuerKeys: keys, Window: time.Millisecond}, "Options.Window"},
		{"window too long", Options{IssuerName: "i", IssuerKeys: keys, Window: 48 * time.Hour}, "Options.Window"},
		{"window not whole seconds", Options{IssuerName: "i", IssuerKeys: keys, Window: 1500 * time.Millisecond}, "Options.Window"},
		{"short secret", Options{IssuerName: "i", IssuerKeys: keys, ContextSecret: []byte("short")}, "Options.ContextSecret"},
		{"binding without context", Options{IssuerName: "i", IssuerKeys: keys, NoRedemptionContext: true,
			ContextBinding: func(*proxy.Session) []byte { return nil }}, "Options.ContextBinding"},
		{"negative nonces", Options{IssuerName: "i", IssuerKeys: keys, MaxNonces: -1}, "Options.MaxNonces"},
		{"too many nonces", Options{IssuerName: "i", IssuerKeys: keys, MaxNonces: MaxNoncesLimit + 1}, "Options.MaxNonces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted it; want an error naming %s", tt.field)
			}
			if !strings.Contains(err.Error(), tt.field+":") || strings.Count(err.Error(), "Options.") != 1 {
				t.Fatalf("error %q does not name %s once", err, tt.field)
			}
		})
	}
}

// clock is a settable clock for a module's windows.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestModule(t *testing.T, opts Options) (*Module, *clock) {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)} // the start of a window of any whole minutes
	m.now = c.now
	return m, c
}

// challengeOf returns the challenge bytes of the module's current WWW-Authenticate.
func challengeOf(t *testing.T, m *Module, binding []byte) ([]byte, *wwwAuthenticate) {
	t.Helper()
	w, err := parseWWWAuthenticate(m.challengeHeader(m.now(), binding))
	if err != nil {
		t.Fatal(err)
	}
	return w.challenge, w
}

func TestRedeem(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	other := newTestIssuer(t, "other.example")
	m, clk := newTestModule(t, Options{
		IssuerName: "issuer.example",
		IssuerKeys: []*rsa.PublicKey{is.pk()},
		OriginInfo: []string{"origin.example"},
		Window:     time.Minute,
	})
	redeem := func(tok *Token) error {
		_, err := m.redeem(FormatAuthorization(tok), clk.now(), nil)
		return err
	}

	chal, w := challengeOf(t, m, nil)
	if w.parsed.IssuerName != "issuer.example" || len(w.parsed.RedemptionContext) != RedemptionContextSize ||
		len(w.parsed.OriginInfo) != 1 || w.parsed.OriginInfo[0] != "origin.example" {
		t.Fatalf("challenge %+v", w.parsed)
	}
	if w.tokenKey.N.Cmp(is.pk().N) != 0 {
		t.Fatal("token-key is not the issuer key")
	}
	if w.maxAge != "120" {
		t.Errorf("max-age %s at the start of a window of 60s, want 120", w.maxAge)
	}

	tok := is.token(t, chal)
	if err := redeem(tok); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if err := redeem(tok); !errors.Is(err, errReplay) {
		t.Fatalf("replay: %v", err)
	}

	// A token for this window is good in the next one, and replays stay caught.
	tok2 := is.token(t, chal)
	clk.t = clk.t.Add(time.Minute)
	if err := redeem(tok); !errors.Is(err, errReplay) {
		t.Fatalf("replay in the next window: %v", err)
	}
	if err := redeem(tok2); err != nil {
		t.Fatalf("token of the previous window: %v", err)
	}
	// Two windows on, a challenge has expired.
	tok3 := is.token(t, chal)
	clk.t = clk.t.Add(time.Minute)
	if err := redeem(tok3); !errors.Is(err, errChallenge) {
		t.Fatalf("token two windows old: %v, want errChallenge", err)
	}

	chal, _ = challengeOf(t, m, nil)
	tests := []struct {
		name string
		tok  func() *Token
		want error
	}{
		{"another issuer's key", func() *Token { return other.token(t, chal) }, errUnknownKey},
		{"another issuer name", func() *Token {
			c, _ := ParseChallenge(chal)
			c.IssuerName = "other.example"
			b, _ := c.MarshalBinary()
			return is.token(t, b)
		}, errChallenge},
		{"another origin", func() *Token {
			c, _ := ParseChallenge(chal)
			c.OriginInfo = []string{"elsewhere.example"}
			b, _ := c.MarshalBinary()
			return is.token(t, b)
		}, errChallenge},
		{"no origin", func() *Token {
			c, _ := ParseChallenge(chal)
			c.OriginInfo = nil
			b, _ := c.MarshalBinary()
			return is.token(t, b)
		}, errChallenge},
		{"forged context", func() *Token {
			c, _ := ParseChallenge(chal)
			c.RedemptionContext = bytes.Repeat([]byte{1}, RedemptionContextSize)
			b, _ := c.MarshalBinary()
			return is.token(t, b)
		}, errChallenge},
		{"changed nonce", func() *Token {
			tok := is.token(t, chal)
			tok.Nonce[5] ^= 0x10
			return tok
		}, errSignature},
		{"changed authenticator", func() *Token {
			tok := is.token(t, chal)
			tok.Authenticator[100] ^= 1
			return tok
		}, errSignature},
		{"other issuer's signature under this key id", func() *Token {
			tok := other.token(t, chal)
			tok.KeyID = is.keyID
			return tok
		}, errSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := redeem(tt.tok()); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRedeemKeyRotation(t *testing.T) {
	oldKey := newTestIssuer(t, "issuer.example")
	newKey := newTestIssuer(t, "issuer.example")
	m, clk := newTestModule(t, Options{
		IssuerName: "issuer.example",
		IssuerKeys: []*rsa.PublicKey{newKey.pk(), oldKey.pk()},
	})
	chal, w := challengeOf(t, m, nil)
	if w.tokenKey.N.Cmp(newKey.pk().N) != 0 {
		t.Fatal("challenges advertise a key other than the first")
	}
	for _, is := range []*testIssuer{newKey, oldKey} {
		if _, err := m.redeem(FormatAuthorization(is.token(t, chal)), clk.now(), nil); err != nil {
			t.Fatalf("token of key %x: %v", is.keyID[:4], err)
		}
	}
}

func TestRedeemBinding(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	m, clk := newTestModule(t, Options{
		IssuerName:     "issuer.example",
		IssuerKeys:     []*rsa.PublicKey{is.pk()},
		ContextBinding: func(s *proxy.Session) []byte { return []byte(s.Request().Path()) },
	})
	chalA, _ := challengeOf(t, m, []byte("/a"))
	chalB, _ := challengeOf(t, m, []byte("/b"))
	if bytes.Equal(chalA, chalB) {
		t.Fatal("bindings make the same challenge")
	}
	tok := is.token(t, chalA)
	if _, err := m.redeem(FormatAuthorization(tok), clk.now(), []byte("/b")); !errors.Is(err, errChallenge) {
		t.Fatalf("token for /a on /b: %v", err)
	}
	if _, err := m.redeem(FormatAuthorization(tok), clk.now(), []byte("/a")); err != nil {
		t.Fatalf("token for /a on /a: %v", err)
	}
	// The previous window's challenge with the same binding is still good.
	tok = is.token(t, chalA)
	clk.t = clk.t.Add(DefaultWindow)
	if _, err := m.redeem(FormatAuthorization(tok), clk.now(), []byte("/a")); err != nil {
		t.Fatalf("token for /a of the previous window: %v", err)
	}
}

func TestRedeemSharedSecret(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	secret := make([]byte, 32)
	rand.Read(secret)
	opts := Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}, ContextSecret: secret}
	a, _ := newTestModule(t, opts)
	b, clk := newTestModule(t, opts)
	opts.ContextSecret = nil
	c, _ := newTestModule(t, opts)
	chal, _ := challengeOf(t, a, nil)
	if _, err := b.redeem(FormatAuthorization(is.token(t, chal)), clk.now(), nil); err != nil {
		t.Fatalf("a challenge of a proxy with the same secret: %v", err)
	}
	if _, err := c.redeem(FormatAuthorization(is.token(t, chal)), clk.now(), nil); !errors.Is(err, errChallenge) {
		t.Fatalf("a challenge of a proxy with another secret: %v", err)
	}
}

func TestRedeemStoreFull(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	m, clk := newTestModule(t, Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}, MaxNonces: 2})
	chal, _ := challengeOf(t, m, nil)
	var err error
	n := 0
	for ; n < 10 && err == nil; n++ {
		_, err = m.redeem(FormatAuthorization(is.token(t, chal)), clk.now(), nil)
	}
	if !errors.Is(err, errStoreFull) || n < 3 {
		t.Fatalf("after %d tokens: %v, want errStoreFull after at least 2", n, err)
	}
	if m.MemoryBound() <= 0 {
		t.Fatal("no memory bound")
	}
}

func TestChallengeHeaderNoContext(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	m, _ := newTestModule(t, Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}, NoRedemptionContext: true})
	h := m.challengeHeader(m.now(), nil)
	w, err := parseWWWAuthenticate(h)
	if err != nil {
		t.Fatal(err)
	}
	if w.parsed.RedemptionContext != nil || w.maxAge != "" {
		t.Fatalf("challenge %q has a context or max-age", h)
	}
	if !strings.Contains(h, base64.URLEncoding.EncodeToString(w.challenge)) {
		t.Fatal("challenge not padded base64url")
	}
}

// TestRedeemConcurrent: tokens redeemed from many goroutines at once are each accepted
// exactly once.
func TestRedeemConcurrent(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	m, clk := newTestModule(t, Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}, MaxNonces: 1 << 14})
	chal, _ := challengeOf(t, m, nil)
	authz := make([]string, 24)
	for i := range authz {
		authz[i] = FormatAuthorization(is.token(t, chal))
	}
	var accepted [24]atomic.Int32
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for k := range authz {
				i := (k + g*5) % len(authz)
				_, err := m.redeem(authz[i], clk.now(), nil)
				switch {
				case err == nil:
					accepted[i].Add(1)
				case !errors.Is(err, errReplay):
					t.Errorf("token %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	for i := range accepted {
		if n := accepted[i].Load(); n != 1 {
			t.Errorf("token %d accepted %d times", i, n)
		}
	}
}
