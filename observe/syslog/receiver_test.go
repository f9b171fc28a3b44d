package syslog

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// message is an RFC 5424 message as the strict parser reads it.
type message struct {
	Pri      int
	Time     string // "" for the nil value
	Hostname string
	AppName  string
	ProcID   string
	MsgID    string
	SDID     string      // "" when STRUCTURED-DATA is "-"
	Params   [][2]string // the SD-PARAMs, unescaped, in order
	Msg      string      // without the BOM
	BOM      bool
}

// parse reads one RFC 5424 message strictly: header fields with their character sets
// and lengths, the microsecond timestamp this package writes, STRUCTURED-DATA of at
// most one element with every '"', '\' and ']' escaped, and MSG in UTF-8.
func parse(b []byte) (message, error) {
	var m message
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri := s[1:end]
	if len(pri) > 1 && pri[0] == '0' {
		return m, errors.New("PRI with a leading zero")
	}
	p, err := strconv.Atoi(pri)
	if err != nil || p < 0 || p > 191 {
		return m, fmt.Errorf("bad PRI %q", pri)
	}
	m.Pri = p
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return m, errors.New("VERSION is not 1")
	}
	s = s[2:]
	fields := make([]string, 5)
	limits := []int{len(rfc3339Micro) + 1, maxHostname, maxAppName, maxProcID, maxMsgID}
	for i := range fields {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			return m, fmt.Errorf("header field %d not ended by SP", i)
		}
		f := s[:sp]
		s = s[sp+1:]
		if f == "" || len(f) > limits[i] {
			return m, fmt.Errorf("header field %d %q: bad length", i, f)
		}
		for j := 0; j < len(f); j++ {
			if f[j] < 33 || f[j] > 126 {
				return m, fmt.Errorf("header field %d %q: not printable US-ASCII", i, f)
			}
		}
		if f != "-" {
			fields[i] = f
		}
	}
	if fields[0] != "" {
		ok := len(fields[0]) == len("2006-01-02T15:04:05.000000Z") || len(fields[0]) == len("2006-01-02T15:04:05.000000+01:00")
		if _, err := time.Parse(time.RFC3339Nano, fields[0]); err != nil || !ok {
			return m, fmt.Errorf("TIMESTAMP %q", fields[0])
		}
	}
	m.Time, m.Hostname, m.AppName, m.ProcID, m.MsgID = fields[0], fields[1], fields[2], fields[3], fields[4]

	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		if !strings.HasPrefix(s, "[") {
			return m, errors.New("STRUCTURED-DATA is neither - nor [")
		}
		s = s[1:]
		i := strings.IndexAny(s, " ]")
		if i < 0 {
			return m, errors.New("SD-ID not ended")
		}
		if err := checkSDID(s[:i]); err != nil {
			return m, err
		}
		m.SDID = s[:i]
		s = s[i:]
		for s != "" && s[0] == ' ' {
			s = s[1:]
			eq := strings.IndexByte(s, '=')
			if eq < 1 || eq > maxSDName {
				return m, fmt.Errorf("PARAM-NAME in %q", s)
			}
			name := s[:eq]
			for j := 0; j < len(name); j++ {
				if !sdNameChar(name[j]) {
					return m, fmt.Errorf("PARAM-NAME %q", name)
				}
			}
			s = s[eq+1:]
			if !strings.HasPrefix(s, `"`) {
				return m, fmt.Errorf("PARAM-VALUE of %q not quoted", name)
			}
			s = s[1:]
			var v strings.Builder
			for {
				if s == "" {
					return m, fmt.Errorf("PARAM-VALUE of %q not ended", name)
				}
				c := s[0]
				if c == '"' {
					s = s[1:]
					break
				}
				if c == ']' {
					return m, fmt.Errorf("PARAM-VALUE of %q has an unescaped ]", name)
				}
				if c == '\\' {
					if len(s) < 2 || !strings.ContainsRune(`"\]`, rune(s[1])) {
						return m, fmt.Errorf("PARAM-VALUE of %q has a lone backslash", name)
					}
					c = s[1]
					s = s[1:]
				}
				v.WriteByte(c)
				s = s[1:]
			}
			if !utf8.ValidString(v.String()) {
				return m, fmt.Errorf("PARAM-VALUE of %q is not UTF-8", name)
			}
			m.Params = append(m.Params, [2]string{name, v.String()})
		}
		if !strings.HasPrefix(s, "]") {
			return m, errors.New("SD-ELEMENT not ended by ]")
		}
		s = s[1:]
		if strings.HasPrefix(s, "[") {
			return m, errors.New("more than one SD-ELEMENT")
		}
	}
	if s == "" {
		return m, nil
	}
	if s[0] != ' ' {
		return m, fmt.Errorf("no SP before MSG: %q", s)
	}
	s = s[1:]
	if rest, ok := strings.CutPrefix(s, "\uFEFF"); ok {
		m.BOM = true
		s = rest
	}
	if !utf8.ValidString(s) {
		return m, errors.New("MSG is not UTF-8")
	}
	m.Msg = s
	return m, nil
}

// readFrame reads one RFC 6587 octet-counted frame.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n := 0
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i == 0 && err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("MSG-LEN: %w", err)
		}
		if c == ' ' && i > 0 {
			break
		}
		if c < '0' || c > '9' || (i == 0 && c == '0') || i > 8 {
			return nil, fmt.Errorf("bad MSG-LEN byte %q", c)
		}
		n = n*10 + int(c-'0')
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return b, nil
}

// receiver is a syslog receiver on loopback or a Unix socket of the test's own. It
// hands each raw message it reads to msgs, and framing errors to errs.
type receiver struct {
	t       *testing.T
	network string
	addr    string
	msgs    chan []byte
	errs    chan error

	ln    net.Listener
	pc    net.PacketConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	read  bool // stream: whether accepted connections are read

	tlsServer *tls.Config // for "tcp+tls"
	tlsClient *tls.Config // what a Handler needs to trust the receiver
}

// tlsConfigs returns a receiver's and a client's TLS configurations for a fresh
// self-signed certificate of 127.0.0.1.
func tlsConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: roots}
}

// socketPath returns a short socket path in a fresh directory (t.TempDir's can exceed
// the 108 bytes of sun_path).
func socketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "syslog")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// startReceiver listens on addr ("" for a fresh one) and serves until stop.
func startReceiver(t *testing.T, network, addr string) *receiver {
	r := &receiver{t: t, network: network, msgs: make(chan []byte, 10000), errs: make(chan error, 100), read: true}
	if network == "tcp+tls" {
		r.tlsServer, r.tlsClient = tlsConfigs(t)
	}
	r.listen(addr)
	t.Cleanup(r.stop)
	return r
}

// startStalled starts a stream receiver that accepts connections but never reads.
func startStalled(t *testing.T, network string) *receiver {
	r := &receiver{t: t, network: network, msgs: make(chan []byte, 1), errs: make(chan error, 1)}
	if network == "tcp+tls" {
		r.tlsServer, r.tlsClient = tlsConfigs(t)
	}
	r.listen("")
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) listen(addr string) {
	r.t.Helper()
	if addr == "" {
		switch r.network {
		case "udp", "tcp", "tcp+tls":
			addr = "127.0.0.1:0"
		default:
			addr = socketPath(r.t)
		}
	}
	var err error
	switch r.network {
	case "udp", "unixgram":
		r.pc, err = net.ListenPacket(r.network, addr)
		if err != nil {
			r.t.Fatal(err)
		}
		r.addr = r.pc.LocalAddr().String()
		r.wg.Go(r.serveDatagrams)
	default:
		network := r.network
		if r.tlsServer != nil {
			network = "tcp"
		}
		r.ln, err = net.Listen(network, addr)
		if err != nil {
			r.t.Fatal(err)
		}
		if r.tlsServer != nil {
			r.ln = tls.NewListener(r.ln, r.tlsServer)
		}
		r.addr = r.ln.Addr().String()
		r.wg.Go(r.accept)
	}
}

func (r *receiver) serveDatagrams() {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.msgs <- append([]byte(nil), buf[:n]...)
	}
}

func (r *receiver) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		if !r.read {
			if tc, ok := c.(*tls.Conn); ok {
				// Complete the handshake, so that the sender stalls on
				// writes rather than on connecting.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc.Handshake()
				c.SetDeadline(time.Time{})
			}
			continue
		}
		r.wg.Go(func() {
			br := bufio.NewReader(c)
			for {
				b, err := readFrame(br)
				if err == io.EOF || errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						r.errs <- err
					}
					return
				}
				r.msgs <- b
			}
		})
	}
}

// stop closes the socket and every connection, and waits for the goroutines. For a
// Unix socket the file goes too, so a sender cannot reach it until restart.
func (r *receiver) stop() {
	if r.pc != nil {
		r.pc.Close()
		if r.network == "unixgram" {
			os.Remove(r.addr)
		}
	}
	if r.ln != nil {
		r.ln.Close() // removes a Unix socket's file
	}
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// restart listens again on the same address.
func (r *receiver) restart() {
	r.pc, r.ln = nil, nil
	r.listen(r.addr)
}

// next returns the next message, parsed, failing t after 5s.
func (r *receiver) next(t *testing.T) message {
	t.Helper()
	select {
	case b := <-r.msgs:
		m, err := parse(b)
		if err != nil {
			t.Fatalf("invalid message %q: %v", b, err)
		}
		return m
	case err := <-r.errs:
		t.Fatalf("framing: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return message{}
}

// param returns the value of the named SD-PARAM.
func (m message) param(name string) (string, bool) {
	for _, p := range m.Params {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}
