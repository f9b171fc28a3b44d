//go:build linux

package proxy

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/upwatch"
)

// TestPoolTLSCheckSessionTicket checks the liveness check of an idle TLS connection
// with a TLS 1.3 NewSessionTicket waiting in its socket (a server that asks for a
// client certificate sends its tickets after the client's Finished, so they arrive
// after the handshake): the ticket is taken and the connection kept; a close_notify
// that follows is seen.
func TestPoolTLSCheckSessionTicket(t *testing.T) {
	p := newPKI(t)
	cert := p.keyPair(t, p.issue(t, "origin.test", []string{"origin.test"}, false))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closeNotify, stop := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if c.(*tls.Conn).Handshake() != nil {
			return
		}
		select {
		case <-closeNotify:
		case <-stop:
			return
		}
		c.(*tls.Conn).CloseWrite()
		io.Copy(io.Discard, c) // until the client closes
	}()
	pool := newConnPool(1, 10, h1.NewBufPool(0), h1.Limits{})
	defer pool.watch.Release()
	peer := &Peer{Address: ln.Addr().String(), TLS: &PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}}
	c, err := pool.dial(t.Context(), peer)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(stop)
		c.close()
		<-done
	}()
	if c.tls == nil || c.rc == nil {
		t.Fatal("the TLS connection has no socket to check")
	}
	waitCond(t, "the session ticket", func() bool { return c.peeker.Peek() == upwatch.Data })
	if !c.isAlive() {
		t.Fatal("a connection with a session ticket waiting was found dead")
	}
	if got := c.peeker.Peek(); got != upwatch.Empty {
		t.Fatalf("the check left the socket in state %d, want it empty", got)
	}
	if !c.isAlive() {
		t.Fatal("an idle connection was found dead")
	}
	close(closeNotify)
	waitCond(t, "the close_notify", func() bool { return c.peeker.Peek() != upwatch.Empty })
	if c.isAlive() {
		t.Fatal("a connection closed with close_notify was found alive")
	}
}
