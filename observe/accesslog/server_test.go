package accesslog_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

var _ server.BackgroundService = (*accesslog.Logger)(nil)

// TestServer runs the Logger as a background service of a server.Server beside the
// proxy service it logs: the server starts it, and at a graceful shutdown stops it
// after the proxy has drained, which flushes and closes the file.
func TestServer(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	peer, err := proxy.NewPeer(strings.TrimPrefix(origin.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "access.log")
	alog, err := accesslog.New(accesslog.Options{Path: path, Format: accesslog.Combined, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	done := &ended{c: make(chan struct{}, 1)}
	svc, err := proxy.NewService("edge", &app{origin: peer}, proxy.ServiceOptions{
		Observers: []observe.Observer{alog, done}, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	srv, err := server.New(server.Options{Logger: discard, NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []server.Service{svc, alog} {
		if err := srv.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan error, 1)
	go func() { ran <- srv.Run() }()
	select {
	case <-srv.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start")
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + srv.Addrs("edge")[0].String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case <-done.c:
	case <-time.After(10 * time.Second):
		t.Fatal("no RequestEnd")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"GET /x HTTP/1.1" 200 5 "-" "Go-http-client/1.1"`) || strings.Count(string(b), "\n") != 1 {
		t.Errorf("log after shutdown: %q", b)
	}
	if err := alog.Flush(); err == nil {
		t.Error("the Logger is still open after the server stopped")
	}
}
