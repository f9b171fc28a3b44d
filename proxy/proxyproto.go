package proxy

import (
	"net"
	"net/netip"
	"strings"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"

	"github.com/gotthard-proxy/gotthard/internal/proxyproto"
)

// wrapProxyProtocol wraps the TCP listeners of lns to read the PROXY protocol header
// when ServiceOptions.ProxyProtocol is on. The caller holds s.mu.
func (s *Service[C]) wrapProxyProtocol(lns []net.Listener) ([]net.Listener, error) {
	if s.ppOpts == nil {
		return lns, nil
	}
	out := make([]net.Listener, len(lns))
	for i, ln := range lns {
		if !strings.HasPrefix(ln.Addr().Network(), "tcp") {
			out[i] = ln
			continue
		}
		pl, err := proxyproto.NewListener(ln, *s.ppOpts)
		if err != nil {
			return lns, err
		}
		out[i] = pl
	}
	return out, nil
}

// acceptProxyProtocol serves a connection of a listener that reads the PROXY protocol:
// on a goroutine of its own it reads the header (within its timeout), then serves the
// connection as any other, with the header's addresses as the connection's.
func (s *Service[C]) acceptProxyProtocol(pc *proxyproto.Conn, tcfg *gtls.Config) {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		pc.Close()
		return
	}
	s.ppPending[pc] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	go func() {
		_, err := pc.Header() // (a refused connection is closed and logged)
		var c *conn[C]
		if err == nil {
			c = s.newConn(wrapTLS(pc, tcfg))
		}
		s.mu.Lock()
		delete(s.ppPending, pc)
		closing := s.closing.Load()
		if c != nil && !closing {
			s.conns[c] = struct{}{}
			s.connWG.Add(1)
		}
		s.mu.Unlock()
		s.connWG.Done()
		switch {
		case err != nil:
		case closing:
			pc.Close()
		default:
			c.serve()
		}
	}()
}

// upstreamPeer returns the peer to connect to for peer: peer itself, or, when it sends
// the PROXY protocol, a copy that carries the client connection's addresses (part of
// its pool key), made once per client connection and peer.
func (c *conn[C]) upstreamPeer(peer *Peer) *Peer {
	if peer.ProxyProtocol == 0 {
		return peer
	}
	if pp := c.ppPeer.Load(); pp != nil && pp[0] == peer {
		return pp[1]
	}
	cp := *peer
	cp.ppSrc = addrPortOf(c.nc.RemoteAddr())
	cp.ppDst = addrPortOf(c.nc.LocalAddr())
	c.ppPeer.Store(&[2]*Peer{peer, &cp})
	return &cp
}

// addrPortOf returns a TCP address as a netip.AddrPort; the zero value for others.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// sendProxyHeader writes the PROXY protocol header of peer on a new connection to it,
// within the peer's connect timeout.
func sendProxyHeader(nc net.Conn, peer *Peer) error {
	var buf [64]byte
	b, err := proxyproto.Append(buf[:0], int(peer.ProxyProtocol), peer.ppSrc, peer.ppDst)
	if err != nil {
		return err
	}
	nc.SetWriteDeadline(time.Now().Add(peer.Options.connectTimeout()))
	if _, err := nc.Write(b); err != nil {
		return err
	}
	return nc.SetWriteDeadline(time.Time{})
}
