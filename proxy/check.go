package proxy

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"
)

// Check reports what would keep the service from working, without listening or
// connecting (its options were validated by [NewService]): its endpoints (none, or an address
// that is not host:port), each TLS endpoint's configuration (an offered ALPN protocol the
// proxy speaks, certificates that are valid now) and methods of the ProxyHTTP that look
// like misspelt phases ([CheckPhases]). The certificate files themselves were read, and
// their keys matched, when the tls.Config was made with tls.New.
//
// It makes the Service a server.Checker, so a server.Server in test mode (-t) calls it.
// The problems are joined with [errors.Join]; nil means none was found.
func (s *Service[C]) Check() error {
	var errs []error
	eps := s.Endpoints()
	if len(eps) == 0 {
		errs = append(errs, errors.New("proxy: no endpoints (AddTCP, AddTLS or AddUnix)"))
	}
	now := time.Now()
	for _, ep := range eps {
		switch ep.Network() {
		case "unix":
			if ep.String() == "" {
				errs = append(errs, errors.New("proxy: endpoint unix: empty socket path"))
			}
		default:
			if _, _, err := net.SplitHostPort(ep.String()); err != nil {
				errs = append(errs, fmt.Errorf("proxy: endpoint %q: %w", ep.String(), err))
			}
		}
		e, ok := ep.(endpoint)
		if !ok || e.tls == nil {
			continue
		}
		if err := checkEndpointTLS(e, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := CheckPhases(s.app); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkEndpointTLS checks the TLS configuration of one endpoint at time now.
func checkEndpointTLS(e endpoint, now time.Time) error {
	var errs []error
	protos := e.tls.NextProtos()
	speaks := len(protos) == 0
	for _, p := range protos {
		if p == "h2" || p == "http/1.1" {
			speaks = true
		}
	}
	if !speaks {
		errs = append(errs, fmt.Errorf("proxy: TLS endpoint %s (tls %q): ALPN offers %q, none of which the proxy speaks (h2, http/1.1)",
			e.address, e.tls.Name(), protos))
	}
	if err := e.tls.CheckCertificates(now); err != nil {
		errs = append(errs, fmt.Errorf("proxy: TLS endpoint %s (tls %q): %w", e.address, e.tls.Name(), err))
	}
	return errors.Join(errs...)
}

// phaseNames are the exported methods of [ProxyHTTP], in the order reflect lists them.
func phaseNames() []string {
	t := reflect.TypeFor[ProxyHTTP[struct{}]]()
	names := make([]string, 0, t.NumMethod())
	for i := range t.NumMethod() {
		if m := t.Method(i); m.IsExported() {
			names = append(names, m.Name)
		}
	}
	return names
}

// CheckPhases reports exported methods of app (the value given to [NewService]) whose
// names are close to a phase's but are not phases, so the framework never calls them and
// the default from [Phases] runs instead: RequestFiltr, ResponsFilter, Upstreampeer,
// UpstreamPeers. A name is close when it equals a phase name but for case or a trailing
// "s" added or removed; or when it is within two single-letter edits of one and the
// method takes a [*Session], as every phase but NewCtx does (so a helper such as
// Login(user string) is not taken for Logging). The error lists each such method with
// the phase it probably meant; nil means none.
//
// A method with a phase's exact name but the wrong signature cannot be found this way:
// it fails to compile where app is used as a ProxyHTTP. Make that error plain with a
// compile-time assertion next to the type:
//
//	var _ proxy.ProxyHTTP[*Ctx] = (*Gateway)(nil)
//
// [Service.Check] calls CheckPhases, and so does proxytest.Serve.
func CheckPhases(app any) error {
	t := reflect.TypeOf(app)
	if t == nil {
		return errors.New("proxy: CheckPhases: nil app")
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		t = reflect.PointerTo(t) // the methods of a value and of a pointer to it
	}
	phases := phaseNames()
	isPhase := make(map[string]bool, len(phases))
	for _, p := range phases {
		isPhase[p] = true
	}
	var found []string
	for i := range t.NumMethod() {
		m := t.Method(i)
		if !m.IsExported() || isPhase[m.Name] {
			continue
		}
		p, d := closePhase(m.Name, phases)
		if d == 0 || d <= 2 && takesSession(m.Type) {
			found = append(found, fmt.Sprintf("%s (%s?)", m.Name, p))
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("proxy: %v has methods named like phases that are not phases, so they never run: %s",
		t, strings.Join(found, ", "))
}

// closePhase returns the phase name that name is closest to and how close: 0 when they
// differ only in case or a trailing "s", else the edit distance (3 stands for "farther").
func closePhase(name string, phases []string) (string, int) {
	n := strings.ToLower(name)
	best, bestDist := "", 3
	for _, p := range phases {
		lp := strings.ToLower(p)
		d := editDistance(n, lp)
		if n+"s" == lp || lp+"s" == n {
			d = 0
		}
		if d < bestDist {
			best, bestDist = p, d
		}
	}
	return best, bestDist
}

// takesSession reports whether a method (of a method set, so its receiver comes first)
// has a *Session parameter.
func takesSession(m reflect.Type) bool {
	session := reflect.TypeFor[*Session]()
	for i := range m.NumIn() {
		if m.In(i) == session {
			return true
		}
	}
	return false
}

// editDistance returns the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
