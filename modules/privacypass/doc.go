// Package privacypass is a [proxy.Module] that asks clients for Privacy Pass tokens
// (RFC 9577) and lets through only the requests that carry a valid one: publicly
// verifiable tokens of type 0x0002, blind RSA signatures made by an issuer the origin
// trusts (RFC 9578 §6). A client proves that an issuer (which checked it somehow: an
// attestation, a login, a CAPTCHA) vouched for it, without the origin learning who it is
// or linking its requests.
//
// A request without a token, or with one that does not pass, is answered by the proxy:
//
//	HTTP/1.1 401 Unauthorized
//	WWW-Authenticate: PrivateToken challenge="<TokenChallenge>", token-key="<issuer key>", max-age=540
//
// The client takes the challenge to the issuer, gets a token and sends the request again
// with
//
//	Authorization: PrivateToken token="<Token>"
//
// The module checks the token's type, that it answers a challenge this module made
// (issuer name, origin info and redemption context), that its key is one of the issuer
// keys it was given, the blind RSA signature (with github.com/cloudflare/circl), and
// that its nonce was not redeemed before. The request then goes on without its
// Authorization field, so the upstream never sees the token.
//
// # Redemption contexts
//
// Challenges are stateless: the redemption context of a challenge is an HMAC (keyed by
// Options.ContextSecret) of the current time window and, when Options.ContextBinding is
// set, of bytes taken from the request. A token is accepted for a challenge of the
// current window or the one before, so a challenge is good for one to two windows, and
// proxies that share the secret accept each other's challenges. The replay store keeps
// nonces per window for those two windows, in memory fixed by Options.MaxNonces; the
// token's context says which window it belongs to, so a nonce is forgotten only when no
// token with it can be accepted any more. With Options.NoRedemptionContext challenges
// carry no context and tokens can be fetched ahead of time; a replay is then caught only
// within two windows of the first redemption.
//
// The replay store belongs to one Module: proxies that share a secret but not a store
// each accept a token once.
//
// # When not to use it
//
// For privately verifiable tokens (type 0x0001, VOPRF), where the origin and the issuer
// share a key, and for rate-limited issuance, this package does nothing: it redeems type
// 0x0002 only.
//
// # Example
//
//	pp, err := privacypass.New(privacypass.Options{
//		IssuerName: "issuer.example",
//		IssuerKeys: []*rsa.PublicKey{issuerKey},
//		OriginInfo: []string{"origin.example"},
//	})
//	if err != nil {
//		return err
//	}
//	svc, err := proxy.NewService("gateway", app, proxy.ServiceOptions{
//		Modules: []proxy.Module{pp},
//	})
package privacypass
