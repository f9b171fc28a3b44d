package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Client is a small DNS stub resolver that reports the TTL of its answers, so that
// [DNS] re-resolves when they expire. It asks the servers of /etc/resolv.conf (or
// Servers) over UDP, and over TCP when an answer is truncated. A name it cannot resolve
// through them (a name from /etc/hosts, say) is looked up with net.DefaultResolver,
// whose answers carry no TTL — unless Servers is set: then only those are asked. A Client is safe for concurrent use; its zero value is
// ready to use.
type Client struct {
	// Servers are the name servers, "host:port"; if empty, those of /etc/resolv.conf,
	// or "127.0.0.1:53" if it names none.
	Servers []string
	// Timeout bounds one query to one server. If zero, 2s.
	Timeout time.Duration

	mu   sync.Mutex
	ttls map[string]time.Duration
}

// ErrNoAnswer is returned when no server gave an answer.
var ErrNoAnswer = errors.New("discovery: no DNS answer")

// TTL returns the smallest TTL of the last answer for name, or 0 if unknown.
func (c *Client) TTL(name string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttls[canonical(name)]
}

func (c *Client) setTTL(name string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttls == nil {
		c.ttls = map[string]time.Duration{}
	}
	c.ttls[canonical(name)] = ttl
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// LookupIPAddr returns the A and AAAA records of host.
func (c *Client) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var ips []net.IPAddr
	var minTTL uint32
	var firstErr error
	for _, t := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		rrs, err := c.query(ctx, host, t)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range rrs {
			switch b := rr.Body.(type) {
			case *dnsmessage.AResource:
				ips = append(ips, net.IPAddr{IP: net.IP(b.A[:])})
			case *dnsmessage.AAAAResource:
				ips = append(ips, net.IPAddr{IP: net.IP(b.AAAA[:])})
			default:
				continue
			}
			if minTTL == 0 || rr.Header.TTL < minTTL {
				minTTL = rr.Header.TTL
			}
		}
	}
	if len(ips) == 0 && len(c.Servers) == 0 {
		// Not in DNS: try the system's resolver (/etc/hosts, other sources).
		sys, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			if firstErr != nil {
				return nil, fmt.Errorf("%w (system resolver: %v)", firstErr, err)
			}
			return nil, err
		}
		c.setTTL(host, 0)
		return sys, nil
	}
	if len(ips) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("discovery: %s: %w", host, ErrNoAnswer)
		}
		return nil, firstErr
	}
	c.setTTL(host, time.Duration(minTTL)*time.Second)
	return ips, nil
}

// LookupSRV returns the SRV records of _service._proto.name (or of name when service
// and proto are empty), in the order they came.
func (c *Client) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := name
	if service != "" || proto != "" {
		target = "_" + service + "._" + proto + "." + name
	}
	rrs, err := c.query(ctx, target, dnsmessage.TypeSRV)
	if err != nil {
		return "", nil, err
	}
	var srvs []*net.SRV
	var minTTL uint32
	for _, rr := range rrs {
		b, ok := rr.Body.(*dnsmessage.SRVResource)
		if !ok {
			continue
		}
		srvs = append(srvs, &net.SRV{Target: b.Target.String(), Port: b.Port, Priority: b.Priority, Weight: b.Weight})
		if minTTL == 0 || rr.Header.TTL < minTTL {
			minTTL = rr.Header.TTL
		}
	}
	if len(srvs) == 0 {
		return "", nil, fmt.Errorf("discovery: %s: %w", target, ErrNoAnswer)
	}
	c.setTTL(target, time.Duration(minTTL)*time.Second)
	return target, srvs, nil
}

// query asks each server in turn and returns the answer records of the first answer.
func (c *Client) query(ctx context.Context, name string, t dnsmessage.Type) ([]dnsmessage.Resource, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("discovery: bad name %q: %w", name, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var lastErr error = ErrNoAnswer
	for _, server := range c.servers() {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		rrs, err := exchange(qctx, server, qname, t)
		cancel()
		if err == nil {
			return rrs, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("discovery: %s %v: %w", name, t, lastErr)
}

func (c *Client) servers() []string {
	if len(c.Servers) > 0 {
		return c.Servers
	}
	b, err := os.ReadFile("/etc/resolv.conf")
	if err == nil {
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "nameserver" {
				out = append(out, net.JoinHostPort(f[1], "53"))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return []string{"127.0.0.1:53"}
}

// exchange sends one query to server, over UDP and then TCP if the answer was
// truncated, and returns the answer section.
func exchange(ctx context.Context, server string, name dnsmessage.Name, t dnsmessage.Type) ([]dnsmessage.Resource, error) {
	id := uint16(rand.Uint32())
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
	}
	packed, err := q.Pack()
	if err != nil {
		return nil, err
	}
	for _, network := range []string{"udp", "tcp"} {
		resp, err := roundTrip(ctx, network, server, packed)
		if err != nil {
			return nil, err
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			return nil, fmt.Errorf("bad DNS answer from %s: %w", server, err)
		}
		if m.Header.ID != id || !m.Header.Response {
			return nil, fmt.Errorf("mismatched DNS answer from %s", server)
		}
		if m.Header.Truncated && network == "udp" {
			continue
		}
		switch m.Header.RCode {
		case dnsmessage.RCodeSuccess:
			return m.Answers, nil
		case dnsmessage.RCodeNameError:
			return nil, fmt.Errorf("%s: no such name", name)
		default:
			return nil, fmt.Errorf("DNS answer from %s: %v", server, m.Header.RCode)
		}
	}
	return nil, ErrNoAnswer
}

func roundTrip(ctx context.Context, network, server string, q []byte) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if network == "udp" {
		if _, err := conn.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	msg := make([]byte, 2+len(q))
	msg[0], msg[1] = byte(len(q)>>8), byte(len(q))
	copy(msg[2:], q)
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	var lenBuf [2]byte
	if _, err := readFull(conn, lenBuf[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, int(lenBuf[0])<<8|int(lenBuf[1]))
	if _, err := readFull(conn, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
