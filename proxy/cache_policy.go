package proxy

import (
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/message"
)

// The RFC 9111 rules the cache phases' defaults and the serving of stored responses
// follow, from package cache: one place for each.

// judgement is what the cache makes of a stored response for a request.
type judgement struct {
	fresh      bool // serve it as it is
	serveStale bool // serve it although stale (max-stale, stale-while-revalidate)
	background bool // and validate it in the background (stale-while-revalidate)
	staleOnErr bool // serve it if the peer fails (stale-if-error)
}

func judge(p cache.Policy, req *message.RequestHeader, rcc *cache.CacheControl, m *cache.Meta, now time.Time) judgement {
	d := p.DecideParsed(req.Method, rcc, m, m.CacheControl(), now)
	switch d.Action {
	case cache.ActionFresh:
		return judgement{fresh: true}
	case cache.ActionStale:
		return judgement{serveStale: true, background: d.BackgroundRevalidate, staleOnErr: d.StaleIfError}
	}
	return judgement{staleOnErr: d.StaleIfError}
}

// defaultCacheable is ResponseCacheFilter's default: RFC 9111 §3 for a shared cache,
// with p's choices (Surrogate-Control).
func defaultCacheable(p cache.Policy, req *message.RequestHeader, resp *message.ResponseHeader) CacheDecision {
	if st := p.Storable(req, resp); st != cache.StoreOK {
		return CacheDecision{Reason: st.String()}
	}
	return CacheDecision{Store: true}
}

// defaultVariance is CacheVaryFilter's default: RFC 9111 §4.1.
func defaultVariance(req *message.RequestHeader, stored *message.ResponseHeader) (string, bool) {
	k, ok := cache.VarianceKey(nil, req, stored)
	return string(k), ok
}

// storedMeta makes the head to store from the peer's response resp: the RFC's copy,
// its strings cloned so that they do not alias the exchange's arena, with the body's
// length when resp announces it.
func storedMeta(resp *message.ResponseHeader, reqTime, respTime time.Time) *cache.Meta {
	m := cache.NewMeta(resp, reqTime, respTime)
	m.Response.Reason = strings.Clone(m.Response.Reason)
	var h message.Header
	for name, value := range m.Response.Header.All() {
		h.Add(strings.Clone(name), strings.Clone(value))
	}
	m.Response.Header = h
	if v, ok := resp.Header.Lookup("Content-Length"); ok && !resp.Header.Has("Transfer-Encoding") {
		if n, ok := h2.ParseContentLength(v); ok {
			m.Size = n
		}
	}
	return m
}
