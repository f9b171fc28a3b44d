package cache

import (
	"net/url"
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
)

// Invalidations returns the URIs whose stored responses a cache must invalidate after
// forwarding req and receiving resp (RFC 9111 §4.4): when req's method is unsafe (any
// method but GET, HEAD, OPTIONS and TRACE) and resp's status is a non-error one (2xx
// or 3xx), the target URI, and the URIs in Location and Content-Location when they
// have the same origin (scheme, host and port) as the target. The cache invalidates
// them all, whatever the Vary variants: it purges the keys its CacheKey makes for
// those URIs.
//
// scheme is "http" or "https", the scheme the request came in with; the target is
// req.Target if it is in absolute form, else scheme://Host followed by req.Target.
// URIs are returned normalised: scheme and host lowercased, a default port dropped,
// an empty path made "/", the fragment dropped, relative references resolved against
// the target. It returns nil when nothing is to be invalidated or the target is not a
// valid URI.
func Invalidations(scheme string, req *message.RequestHeader, resp *message.ResponseHeader) []string {
	if isSafe(req.Method) || resp.Status < 200 || resp.Status > 399 {
		return nil
	}
	var target *url.URL
	var err error
	if strings.HasPrefix(req.Target, "/") {
		target, err = url.Parse(scheme + "://" + req.Host() + req.Target)
	} else if strings.Contains(req.Target, "://") {
		target, err = url.Parse(req.Target)
	} else {
		return nil
	}
	if err != nil || target.Host == "" {
		return nil
	}
	normalizeURL(target)
	out := []string{target.String()}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v, ok := resp.Header.Lookup(name)
		if !ok {
			continue
		}
		ref, err := url.Parse(trimOWS(v))
		if err != nil {
			continue
		}
		u := target.ResolveReference(ref)
		normalizeURL(u)
		if u.Scheme != target.Scheme || u.Host != target.Host {
			continue
		}
		s := u.String()
		dup := false
		for _, have := range out {
			dup = dup || have == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// normalizeURL applies the normalisations of RFC 9110 §4.2.3 that tell whether two
// URIs are the same resource.
func normalizeURL(u *url.URL) {
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := u.Hostname(), u.Port()
	host = strings.ToLower(host)
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" && u.Opaque == "" {
		u.Path, u.RawPath = "/", ""
	}
}
