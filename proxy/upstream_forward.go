package proxy

import (
	"crypto/tls"

	"github.com/gotthard-proxy/gotthard/message"
)

// upstreamRequest builds the request head for a peer: a fresh copy of the client's
// request, the framework's fields, then the user's UpstreamRequestFilter, checked.
func (c *conn[C]) upstreamRequest(ctx contextT, ex *exchange[C], cc C, peer *Peer) (*message.RequestHeader, *Error) {
	sess := &ex.sess
	up := &ex.upReq
	up.CopyFrom(&sess.req)
	if !up.Header.Has("Host") {
		// HTTP/1.0 clients may leave Host out; HTTP/1.1 and HTTP/2 need it upstream.
		up.Header.Add("Host", peerHost(peer))
	}
	// The client's lines as the codec parsed them need no second check, nor do the
	// forwarding fields valid as made (see addForwarded); the lines the phases add or
	// change do.
	ex.known = unchangedFields(ex.known, &up.Header, ex.reqKnown)
	ex.known = c.forwardedFields(up, ex.known)
	if ex.cache.fill != nil {
		c.cacheRequest(ex, up)
	}
	if err := c.svc.app.UpstreamRequestFilter(ctx, sess, cc, up); err != nil {
		return nil, asError(err, InternalError, Internal)
	}
	if err := validateChanged(&up.Header, ex.known); err != nil {
		return nil, asError(err, InternalError, Internal)
	}
	return up, nil
}

// forwardedFields sets X-Forwarded-* and Via on the upstream request. known records
// which of up's lines are valid already, one entry per line (see unchangedFields); it is
// returned with the lines added that are valid as made.
func (c *conn[C]) forwardedFields(up *message.RequestHeader, known []message.Field) []message.Field {
	s := c.svc
	if !s.opts.NoForwardedHeaders && c.clientS != "" {
		var added bool
		if known, added = c.addForwarded(&up.Header, known); !added {
			c.setForwarded(&up.Header)
		}
	}
	if s.via != "" {
		appendVia(&up.Header, s.via)
	}
	return known
}

// setForwarded sets the X-Forwarded-* fields of h, which has one of them already: a
// trusted client's are extended or kept, an untrusted one's replaced.
func (c *conn[C]) setForwarded(h *message.Header) {
	if prior, ok := h.Lookup("X-Forwarded-For"); ok && c.trusted {
		h.Set("X-Forwarded-For", prior+", "+c.clientS)
	} else {
		h.Set("X-Forwarded-For", c.clientS)
	}
	if !c.trusted || !h.Has("X-Forwarded-Proto") {
		h.Set("X-Forwarded-Proto", c.scheme())
	}
	if host, ok := h.Lookup("Host"); ok && (!c.trusted || !h.Has("X-Forwarded-Host")) {
		h.Set("X-Forwarded-Host", host)
	}
}

// addForwarded adds the X-Forwarded-* fields to h when it has none of them, the usual
// case (an untrusted client's are dropped on arrival): one look at the fields instead of
// a search for each. It reports false, having done nothing, when h has one of them.
// known has an entry for each line of h (see unchangedFields); the new lines' entries
// are appended to it: X-Forwarded-For (an address) and X-Forwarded-Proto (http or
// https) are valid as made, X-Forwarded-Host is when the Host line it copies is known,
// the very line the codec checked. A Host a phase set, even back to an equal value, is
// not, and so its copy is checked after the phases.
func (c *conn[C]) addForwarded(h *message.Header, known []message.Field) ([]message.Field, bool) {
	host := -1
	for i, f := range h.Fields() {
		switch len(f.Name) {
		case len("Host"):
			if host < 0 && message.EqualFold(f.Name, "Host") {
				host = i
			}
		case len("X-Forwarded-For"), len("X-Forwarded-Host"), len("X-Forwarded-Proto"):
			if message.EqualFold(f.Name, "X-Forwarded-For") || message.EqualFold(f.Name, "X-Forwarded-Host") ||
				message.EqualFold(f.Name, "X-Forwarded-Proto") {
				return known, false
			}
		}
	}
	at := h.Len()
	h.Add("X-Forwarded-For", c.clientS)
	h.Add("X-Forwarded-Proto", c.scheme())
	if host >= 0 {
		h.Add("X-Forwarded-Host", h.Field(host).Value)
	}
	made := h.Fields()[at:]
	var xff message.Field
	if c.clientIP.Zone() == "" { // (a zone is an interface name: not checked here)
		xff = made[0]
	}
	known = append(known, xff, made[1])
	if host >= 0 {
		var xfh message.Field
		if known[host].Name != "" {
			xfh = made[2]
		}
		known = append(known, xfh)
	}
	return known, true
}

// scheme is the client connection's scheme, for X-Forwarded-Proto.
func (c *conn[C]) scheme() string { return schemeOf(c.tls) }

// schemeOf is the scheme of a client connection with TLS state cs (nil: none).
func schemeOf(cs *tls.ConnectionState) string {
	if cs != nil {
		return "https"
	}
	return "http"
}

// addRelayFields adds to h, the head of a peer's response, what the proxy adds to every
// response it relays: a Date if the peer sent none, of the time the head arrived (a
// proxy with a clock dates a response as it forwards it, RFC 9110 §6.6.1, as nginx
// does), and the service's Via. The phases see both.
func (c *conn[C]) addRelayFields(sess *Session, h *message.Header) {
	if !h.Has("Date") {
		h.Add("Date", sess.date.get(sess.timing.UpstreamResponse))
	}
	if c.svc.via != "" {
		appendVia(h, c.svc.via)
	}
}

func appendVia(h *message.Header, via string) {
	if prior, ok := h.Lookup("Via"); ok {
		h.Set("Via", prior+", "+via)
		return
	}
	h.Add("Via", via)
}
