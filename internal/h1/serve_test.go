package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// ServeReadable calls serve with what each read brought: whole requests, one in two
// pieces (the first piece stays buffered for the next call), several at once; it waits
// again while serve returns true and returns io.EOF when the client closes, or nil when
// serve returns false.
func TestServeReadable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, server := connect(t, ln)

	r := NewReader(server, NewBufPool(0), Limits{})
	var targets []string
	var head RequestHead
	serve := func() bool {
		for r.Buffered() > 0 {
			err := r.ReadRequestHeadBuffered(&head)
			if err == ErrWouldBlock {
				return true // the rest comes with a later read
			}
			if err != nil {
				t.Errorf("read head: %v", err)
				return false
			}
			targets = append(targets, string(head.Target))
			if string(head.Target) == "/stop" {
				return false
			}
			io.WriteString(server, "HTTP/1.1 204 No Content\r\n\r\n")
		}
		return true
	}
	done := make(chan error, 1)
	go func() { done <- r.ServeReadable(serve) }()

	br := bufio.NewReader(client)
	answered := func(n int) {
		t.Helper()
		for range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 204 {
				t.Fatalf("response: %v %v", resp, err)
			}
		}
	}
	io.WriteString(client, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	answered(1)
	io.WriteString(client, "GET /b HT")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(client, "TP/1.1\r\nHost: x\r\n\r\n")
	answered(1)
	io.WriteString(client, "GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	answered(2)
	client.Close()
	if err := <-done; err != io.EOF {
		t.Fatalf("ServeReadable after the client closed: %v, want io.EOF", err)
	}
	if got := len(targets); got != 4 || targets[0] != "/a" || targets[1] != "/b" || targets[3] != "/d" {
		t.Fatalf("served %q", targets)
	}

	// serve returning false ends the wait.
	client2, server2 := connect(t, ln)
	r = NewReader(server2, NewBufPool(0), Limits{})
	go func() { done <- r.ServeReadable(serve) }()
	io.WriteString(client2, "GET /stop HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := <-done; err != nil {
		t.Fatalf("ServeReadable after serve returned false: %v", err)
	}
}

// connect opens a loopback connection through ln, closed when the test ends, and returns
// both of its ends.
func connect(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
