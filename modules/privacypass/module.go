package privacypass

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// Defaults of [Options].
const (
	DefaultWindow    = 5 * time.Minute
	DefaultMaxNonces = 1 << 16
)

// Bounds of [Options].
const (
	// MinWindow and MaxWindow bound Options.Window.
	MinWindow = time.Second
	MaxWindow = 24 * time.Hour
	// MaxNoncesLimit bounds Options.MaxNonces: the store then takes 2 GiB.
	MaxNoncesLimit = 1 << 24
	// MinSecretSize is the shortest Options.ContextSecret.
	MinSecretSize = 32
	// MaxIssuerKeys bounds len(Options.IssuerKeys).
	MaxIssuerKeys = 16
)

// Options configure a [Module]. The zero value is not valid: IssuerName and IssuerKeys
// are required.
type Options struct {
	// IssuerName is the name of the issuer whose tokens are accepted, as challenges carry
	// it (RFC 9577 §2.1.1), e.g. "issuer.example". Required: printable ASCII without
	// spaces, commas or quotes, at most 255 bytes.
	IssuerName string

	// IssuerKeys are the issuer's token keys (RSA, 2048 bits, as token type 0x0002
	// requires). A token signed with any of them is accepted; the first one is the
	// token-key challenges advertise. To rotate, put the new key first once the issuer
	// signs with it, and drop the old one two windows later (a token answers a challenge
	// of the current or the previous window). Required, at most [MaxIssuerKeys], no key
	// twice.
	IssuerKeys []*rsa.PublicKey

	// OriginInfo lists the origin names challenges bind tokens to (RFC 9577 §2.1.1),
	// usually the host names this service answers for. Empty means tokens not bound to
	// an origin. Each name is non-empty printable ASCII without commas, spaces or quotes;
	// all together, joined with commas, at most 65535 bytes.
	OriginInfo []string

	// Window is the length of the time windows of redemption contexts: a challenge made
	// in one window is accepted until the end of the next one, and the replay store
	// remembers a nonce for as long. If zero, [DefaultWindow]. Between [MinWindow] and
	// [MaxWindow], a whole number of seconds.
	Window time.Duration

	// ContextSecret keys the HMAC that makes redemption contexts. If nil, New makes a
	// random one, and only this Module recognises its challenges: give every proxy that
	// serves the same clients the same secret so a challenge from one is good on the
	// others. At least [MinSecretSize] bytes otherwise.
	ContextSecret []byte

	// NoRedemptionContext makes challenges with an empty redemption context, so a client
	// may fetch tokens ahead of time and redeem them whenever, as long as the issuer
	// keys stand. The replay store then rejects a replay only within two windows of the
	// token's first redemption: a nonce is not remembered longer. ContextBinding must be
	// nil with it.
	NoRedemptionContext bool

	// ContextBinding, when not nil, returns per-request bytes mixed into the redemption
	// context (for instance the path prefix the token is for, or the client's network),
	// so that a token obtained for one such value is refused for another. It runs on
	// every request the module sees and must be fast and safe for concurrent use. Nil
	// means contexts depend on the window only.
	ContextBinding func(s *proxy.Session) []byte

	// MaxNonces is how many tokens can be redeemed in one window: the replay store takes
	// at least that many nonces per window, for two windows, in tables of 32-byte slots
	// at a load factor of at most 3/4 rounded up to a power of two, allocated when the
	// first nonces arrive and never grown: between 85 and 171 bytes per nonce, 8 MiB for
	// the default ([Module.MemoryBound] says). Once the current window's store is full,
	// further tokens of that window get 503 with Retry-After until the next window. If zero,
	// [DefaultMaxNonces]. At most [MaxNoncesLimit].
	MaxNonces int

	// Skip, when not nil, says which requests the module leaves alone (health checks, a
	// public path): for those it does nothing and costs nothing more. It runs once per
	// request and must be safe for concurrent use. Nil means every request needs a token.
	Skip func(s *proxy.Session) bool

	// Logger receives a Debug record for each refused token, with its reason. If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Module is a [proxy.Module] that lets through only requests carrying a valid Privacy
// Pass token of type 0x0002 (publicly verifiable, blind RSA; RFC 9577, RFC 9578 §6) and
// answers the others with 401 and a challenge. Build it with [New] and register it in
// [proxy.ServiceOptions.Modules]. It is safe for concurrent use.
type Module struct {
	issuerName  string
	originInfo  []string
	keys        []issuerKey
	tokenKey    string // base64url of keys[0], as challenges carry it
	window      time.Duration
	secret      []byte
	noContext   bool
	binding     func(*proxy.Session) []byte
	skip        func(*proxy.Session) bool
	log         *slog.Logger
	store       *nonceStore
	now         func() time.Time // time.Now; tests set another clock
	req         *request         // stateless: one serves every request
	challenges  atomic.Pointer[windowChallenges]
	noCtxDigest [DigestSize]byte // the one challenge with NoRedemptionContext
	noCtxB64    string
}

type issuerKey struct {
	id       [KeyIDSize]byte
	verifier blindrsa.Verifier
}

// windowChallenges are the challenges of the current and the previous window, when
// contexts have no per-request binding: made once per window, read by every request.
type windowChallenges struct {
	window     int64
	cur, prev  [DigestSize]byte
	curEncoded string // base64url of the current window's challenge
}

// Errors of redemption: why a token is refused, as the Debug log gives it.
var (
	// errChallenge reports a token for a challenge this module did not make, or made
	// for a window that has ended: another issuer name, origin, redemption context.
	errChallenge = errors.New("privacypass: token answers another challenge")
	// errUnknownKey reports a token signed with a key not among Options.IssuerKeys.
	errUnknownKey = errors.New("privacypass: token key is not an issuer key")
	// errSignature reports a token whose authenticator does not verify.
	errSignature = errors.New("privacypass: token signature does not verify")
	// errReplay reports a token redeemed before.
	errReplay = errors.New("privacypass: token already redeemed")
	// errStoreFull reports a token that cannot be recorded: the window's replay store
	// is full.
	errStoreFull = errors.New("privacypass: replay store full for this window")
	// errNoToken reports a request without an Authorization field.
	errNoToken = errors.New("privacypass: no token")
)

// New validates opts and returns the module they describe. The error names the first
// field at fault.
func New(opts Options) (*Module, error) {
	if err := checkName(opts.IssuerName, 255); err != nil {
		return nil, fmt.Errorf("privacypass: Options.IssuerName: %w", err)
	}
	m := &Module{
		issuerName: opts.IssuerName,
		originInfo: append([]string(nil), opts.OriginInfo...),
		window:     opts.Window,
		noContext:  opts.NoRedemptionContext,
		binding:    opts.ContextBinding,
		skip:       opts.Skip,
		log:        opts.Logger,
		now:        time.Now,
	}
	switch n := len(opts.IssuerKeys); {
	case n == 0:
		return nil, errors.New("privacypass: Options.IssuerKeys: empty")
	case n > MaxIssuerKeys:
		return nil, fmt.Errorf("privacypass: Options.IssuerKeys: %d keys, more than %d", n, MaxIssuerKeys)
	}
	for i, pk := range opts.IssuerKeys {
		k, err := newIssuerKey(pk)
		if err != nil {
			return nil, fmt.Errorf("privacypass: Options.IssuerKeys[%d]: %w", i, err)
		}
		for j := range m.keys {
			if m.keys[j].id == k.id {
				return nil, fmt.Errorf("privacypass: Options.IssuerKeys[%d]: the key of IssuerKeys[%d] again", i, j)
			}
		}
		m.keys = append(m.keys, k)
	}
	der, _ := MarshalPublicKey(opts.IssuerKeys[0])
	m.tokenKey = base64.URLEncoding.EncodeToString(der)

	total := 0
	for i, o := range m.originInfo {
		if err := checkName(o, 0xffff); err != nil {
			return nil, fmt.Errorf("privacypass: Options.OriginInfo[%d]: %w", i, err)
		}
		total += len(o) + 1
	}
	if total-1 > 0xffff {
		return nil, fmt.Errorf("privacypass: Options.OriginInfo: %d bytes joined, more than 65535", total-1)
	}

	switch {
	case m.window == 0:
		m.window = DefaultWindow
	case m.window < MinWindow || m.window > MaxWindow:
		return nil, fmt.Errorf("privacypass: Options.Window: %v, not between %v and %v", m.window, MinWindow, MaxWindow)
	case m.window%time.Second != 0:
		return nil, fmt.Errorf("privacypass: Options.Window: %v, not a whole number of seconds", m.window)
	}

	switch {
	case opts.ContextSecret == nil:
		m.secret = make([]byte, MinSecretSize)
		rand.Read(m.secret)
	case len(opts.ContextSecret) < MinSecretSize:
		return nil, fmt.Errorf("privacypass: Options.ContextSecret: %d bytes, fewer than %d", len(opts.ContextSecret), MinSecretSize)
	default:
		m.secret = append([]byte(nil), opts.ContextSecret...)
	}
	if m.noContext && m.binding != nil {
		return nil, errors.New("privacypass: Options.ContextBinding: set with NoRedemptionContext")
	}

	maxNonces := opts.MaxNonces
	switch {
	case maxNonces == 0:
		maxNonces = DefaultMaxNonces
	case maxNonces < 1 || maxNonces > MaxNoncesLimit:
		return nil, fmt.Errorf("privacypass: Options.MaxNonces: %d, not between 1 and %d", maxNonces, MaxNoncesLimit)
	}
	m.store = newNonceStore(maxNonces)
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.noContext {
		b := m.challengeBytes(nil)
		m.noCtxDigest = sha256.Sum256(b)
		m.noCtxB64 = base64.URLEncoding.EncodeToString(b)
	}
	m.req = &request{m: m}
	return m, nil
}

func newIssuerKey(pk *rsa.PublicKey) (issuerKey, error) {
	if pk == nil || pk.N == nil {
		return issuerKey{}, errors.New("nil key")
	}
	if n := pk.N.BitLen(); n != keyBits {
		return issuerKey{}, fmt.Errorf("RSA key of %d bits, token type 0x0002 takes %d", n, keyBits)
	}
	if pk.E < 3 || pk.E%2 == 0 {
		return issuerKey{}, fmt.Errorf("RSA public exponent %d", pk.E)
	}
	id, err := KeyID(pk)
	if err != nil {
		return issuerKey{}, err
	}
	v, err := blindrsa.NewVerifier(blindrsa.SHA384PSSDeterministic, pk)
	if err != nil {
		return issuerKey{}, fmt.Errorf("blind RSA verifier: %w", err)
	}
	return issuerKey{id: id, verifier: v}, nil
}

// checkName accepts what can stand in a challenge's issuer name or origin info and in a
// header: printable ASCII, no space, comma or quote, 1 to max bytes.
func checkName(s string, max int) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\' {
			return fmt.Errorf("%q has byte 0x%02x at %d", s, c, i)
		}
	}
	return nil
}

// Name returns "privacypass".
func (m *Module) Name() string { return "privacypass" }

// NewRequest returns the module's filters for a request, or nil for one Options.Skip
// skips. The filters keep no state of their own, so every request shares them.
func (m *Module) NewRequest(s *proxy.Session) proxy.ModuleRequest {
	if m.skip != nil && m.skip(s) {
		return nil
	}
	return m.req
}

// MemoryBound returns the most memory the replay store takes, in bytes: reached once
// both windows it keeps have seen nonces.
func (m *Module) MemoryBound() int64 { return m.store.bytes() }

// windowOf returns the window of t.
func (m *Module) windowOf(t time.Time) int64 {
	return t.Unix() / int64(m.window/time.Second)
}

// redemptionContext returns the context of window for a request with binding.
func (m *Module) redemptionContext(window int64, binding []byte) [RedemptionContextSize]byte {
	mac := hmac.New(sha256.New, m.secret)
	var w [8]byte
	binary.BigEndian.PutUint64(w[:], uint64(window))
	mac.Write(w[:])
	mac.Write(binding)
	var c [RedemptionContextSize]byte
	mac.Sum(c[:0])
	return c
}

// challengeBytes encodes this module's challenge with redemption context rc (nil: empty).
func (m *Module) challengeBytes(rc []byte) []byte {
	c := Challenge{IssuerName: m.issuerName, RedemptionContext: rc, OriginInfo: m.originInfo}
	b, err := c.MarshalBinary()
	if err != nil {
		panic(err) // New validated every part
	}
	return b
}

// digest returns the challenge digest of window with binding.
func (m *Module) digest(window int64, binding []byte) [DigestSize]byte {
	rc := m.redemptionContext(window, binding)
	return sha256.Sum256(m.challengeBytes(rc[:]))
}

// windowChallenges returns the challenges of window without binding, made once.
func (m *Module) windowChallenges(window int64) *windowChallenges {
	if w := m.challenges.Load(); w != nil && w.window == window {
		return w
	}
	rc := m.redemptionContext(window, nil)
	cur := m.challengeBytes(rc[:])
	w := &windowChallenges{
		window:     window,
		cur:        sha256.Sum256(cur),
		prev:       m.digest(window-1, nil),
		curEncoded: base64.URLEncoding.EncodeToString(cur),
	}
	m.challenges.Store(w)
	return w
}

// redeem checks the token of an Authorization value at time now for a request with
// binding, and records its nonce. It returns the window the token belongs to.
func (m *Module) redeem(authorization string, now time.Time, binding []byte) (int64, error) {
	var t Token
	if err := parseAuthorization(authorization, &t); err != nil {
		return 0, err
	}
	var key *issuerKey
	for i := range m.keys {
		if m.keys[i].id == t.KeyID {
			key = &m.keys[i]
			break
		}
	}
	if key == nil {
		return 0, errUnknownKey
	}
	window := m.windowOf(now)
	switch {
	case m.noContext:
		if t.ChallengeDigest != m.noCtxDigest {
			return 0, errChallenge
		}
	case m.binding == nil:
		w := m.windowChallenges(window)
		if t.ChallengeDigest != w.cur {
			if t.ChallengeDigest != w.prev {
				return 0, errChallenge
			}
			window--
		}
	default:
		if t.ChallengeDigest != m.digest(window, binding) {
			if t.ChallengeDigest != m.digest(window-1, binding) {
				return 0, errChallenge
			}
			window--
		}
	}
	var input [TokenSize]byte
	t.put(input[:])
	if err := key.verifier.Verify(input[:tokenInputSize], t.Authenticator[:]); err != nil {
		return 0, fmt.Errorf("%w: %w", errSignature, err)
	}
	switch m.store.record(&t.Nonce, window) {
	case replay:
		return window, errReplay
	case full:
		return window, errStoreFull
	case stale:
		return window, errChallenge
	}
	return window, nil
}

// challengeHeader returns the WWW-Authenticate value of a fresh challenge at now for a
// request with binding.
func (m *Module) challengeHeader(now time.Time, binding []byte) string {
	if m.noContext {
		return formatChallenge(m.noCtxB64, m.tokenKey, 0)
	}
	window := m.windowOf(now)
	// Good until the end of the next window.
	maxAge := (window+2)*int64(m.window/time.Second) - now.Unix()
	if m.binding == nil {
		return formatChallenge(m.windowChallenges(window).curEncoded, m.tokenKey, maxAge)
	}
	rc := m.redemptionContext(window, binding)
	return formatChallenge(base64.URLEncoding.EncodeToString(m.challengeBytes(rc[:])), m.tokenKey, maxAge)
}

// request is the module's filters; one value serves every request.
type request struct {
	proxy.ModuleFilters
	m *Module
}

const (
	bodyUnauthorized = "A Privacy Pass token is required.\n"
	bodyStoreFull    = "Too many tokens redeemed; try again later.\n"
)

// RequestFilter lets the request on when it carries a valid token, with its
// Authorization field removed; otherwise it answers 401 with a fresh challenge (503
// when the replay store is full) and returns [proxy.Handled].
func (r *request) RequestFilter(_ context.Context, s *proxy.Session) (proxy.Result, error) {
	m := r.m
	h := &s.Request().Header
	now := m.now()
	var binding []byte
	if m.binding != nil {
		binding = m.binding(s)
	}
	var err error
	authz, n := "", 0
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Authorization") {
			authz = f.Value
			n++
		}
	}
	switch n {
	case 0:
		err = errNoToken
	case 1:
		var window int64
		window, err = m.redeem(authz, now, binding)
		if err == nil {
			h.Del("Authorization")
			return proxy.Continue, nil
		}
		if errors.Is(err, errStoreFull) && window == m.windowOf(now) {
			// The current window's store is full: only the next window has room. (A
			// token of the previous window gets a fresh challenge below instead.)
			m.log.Debug("privacypass: token refused", "reason", err)
			retry := (window+1)*int64(m.window/time.Second) - now.Unix()
			return proxy.Handled, respond(s, 503, bodyStoreFull, "Retry-After", strconv.FormatInt(max(retry, 1), 10))
		}
	default:
		err = fmt.Errorf("%w: %d Authorization fields", ErrMalformed, n)
	}
	if !errors.Is(err, errNoToken) {
		m.log.Debug("privacypass: token refused", "reason", err)
	}
	return proxy.Handled, respond(s, 401, bodyUnauthorized, "WWW-Authenticate", m.challengeHeader(now, binding))
}

func respond(s *proxy.Session, status int, body, name, value string) error {
	resp := &message.ResponseHeader{Status: status}
	resp.Header.Set(name, value)
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	// A challenge is made for one client and one window: no cache may keep it.
	resp.Header.Set("Cache-Control", "no-store")
	if err := s.WriteResponse(resp, []byte(body)); err != nil {
		return fmt.Errorf("privacypass: writing %d: %w", status, err)
	}
	return nil
}

var (
	_ proxy.Module        = (*Module)(nil)
	_ proxy.ModuleRequest = (*request)(nil)
)
