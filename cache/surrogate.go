package cache

import (
	"github.com/gotthard-proxy/gotthard/message"
)

// Surrogate-Control (W3C Edge Architecture 1.0): an origin's directives for the
// reverse-proxy caches in front of it ("surrogates"), which take precedence over
// Cache-Control there and are not meant for the clients. A cache whose Policy has a
// Surrogate token announces itself upstream with Surrogate-Capability (token
// "Surrogate/1.0") and applies the Surrogate-Control directives that name no target or
// name its token ("max-age=60;gotthard"): no-store, and max-age, which then is the
// response's freshness lifetime whatever Cache-Control says.

// surrogateControl holds the Surrogate-Control directives that apply to a cache.
type surrogateControl struct {
	noStore bool
	maxAge  Delta
}

// surrogate returns the Surrogate-Control directives of h that apply to p's token;
// ok false when there are none (or p is no surrogate).
func (p Policy) surrogate(h *message.Header) (sc surrogateControl, ok bool) {
	if p.Surrogate == "" {
		return sc, false
	}
	for _, f := range h.Fields() {
		if !message.EqualFold(f.Name, "Surrogate-Control") {
			continue
		}
		for v := f.Value; v != ""; {
			var d string
			d, v = cutList(v)
			d = trimOWS(d)
			if d == "" {
				continue
			}
			dir, target := d, ""
			for i := 0; i < len(d); i++ {
				if d[i] == ';' {
					dir, target = trimOWS(d[:i]), trimOWS(d[i+1:])
					break
				}
			}
			if target != "" && !message.EqualFold(target, p.Surrogate) {
				continue
			}
			name, arg, hasArg := dir, "", false
			for i := 0; i < len(dir); i++ {
				if dir[i] == '=' {
					name, arg, hasArg = dir[:i], dir[i+1:], true
					break
				}
			}
			switch {
			case message.EqualFold(name, "no-store"):
				sc.noStore, ok = true, true
			case message.EqualFold(trimOWS(name), "max-age"):
				ok = true
				// (Whitespace around '=' makes it invalid, as in Cache-Control.)
				n, valid := parseDeltaSeconds(arg)
				valid = valid && trimOWS(name) == name
				if !hasArg || !valid || sc.maxAge.Set {
					// (An invalid or repeated max-age: stale at once, as for Cache-Control.)
					sc.maxAge = Delta{Set: true, Invalid: true}
					continue
				}
				sc.maxAge = Delta{Set: true, Seconds: n}
			default:
				ok = true // (content="ESI/1.0" and extensions: Surrogate-Control applies, nothing to do)
			}
		}
	}
	return sc, ok
}

// cutList splits the first member off a comma-separated list (commas inside quoted
// strings do not split).
func cutList(v string) (first, rest string) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == ',' && !quoted:
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// Storable is [Storable] for a cache with p's choices: with a Surrogate token, the
// Surrogate-Control directives addressed to it decide over Cache-Control (no-store
// refuses the response; max-age stores it even with Cache-Control no-store or private).
func (p Policy) Storable(req *message.RequestHeader, resp *message.ResponseHeader) Storability {
	sc, ok := p.surrogate(&resp.Header)
	if !ok {
		return Storable(req, resp)
	}
	switch {
	case req.Method != "GET":
		return NotStorableMethod
	case resp.Status < 200 || resp.Status > 999 || resp.Status == 206 || resp.Status == 304:
		return NotStorableStatus
	case sc.noStore || ParseRequestCacheControl(&req.Header).NoStore:
		return NotStorableNoStore
	case varyStar(&resp.Header):
		return NotStorableVaryStar
	case sc.maxAge.Set:
		return StoreOK
	}
	return Storable(req, resp)
}

// SurrogateCapability is the value a surrogate with token adds to the
// Surrogate-Capability field of its upstream requests.
func SurrogateCapability(token string) string { return token + `="Surrogate/1.0"` }
