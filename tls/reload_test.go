package tls

import (
	"context"
	ctls "crypto/tls"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// replace writes b to path atomically, as deployment tools do.
func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runConfig runs cfg.Run until the test ends.
func runConfig(t *testing.T, cfg *Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestReloadUnderLoad replaces the certificate and key files three times while clients
// handshake without pause. Each time the certificate is renamed into place first and the
// key only after the watcher has tried (and failed) to load the mismatched pair and more
// handshakes went through, as a deployment tool copying two files does. No handshake may
// fail, and once a reload is in, every new handshake sees the new certificate.
func TestReloadUnderLoad(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "site", "gen0", []string{"h.test"}, "ecdsa")
	reloaded := make(chan error, 64)
	cfg, err := New(Options{
		Certificates:  []CertFile{cf},
		WatchInterval: 2 * time.Millisecond,
		NoSIGHUP:      true,
		Logger:        quietLogger(),
		OnReload: func(err error) {
			select {
			case reloaded <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	runConfig(t, cfg)

	var (
		stop             atomic.Bool
		handshakes, fail atomic.Int64
		firstErr         atomic.Value
		wg               sync.WaitGroup
		progress         = make(chan string, 256) // the certificate each handshake got
	)
	deadline := time.Now().Add(30 * time.Second)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for range 2 {
		wg.Go(func() {
			cc := &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()}
			for i := 0; i < 50000 && !stop.Load() && time.Now().Before(deadline); i++ {
				st, err := dial(addr, cc)
				handshakes.Add(1)
				if err != nil {
					fail.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				select {
				case progress <- st.PeerCertificates[0].Subject.CommonName:
				default:
				}
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	// awaitHandshakes waits for n more handshakes and returns the certificate of the last.
	awaitHandshakes := func(n int) string {
		t.Helper()
		var cn string
		for range n {
			select {
			case cn = <-progress:
			case <-timer.C:
				t.Fatal("the clients stalled")
			}
		}
		return cn
	}
	awaitReload := func(wantErr bool) {
		t.Helper()
		for {
			select {
			case err := <-reloaded:
				if (err != nil) == wantErr {
					return
				}
			case <-timer.C:
				t.Fatalf("no reload with error=%v in time", wantErr)
			}
		}
	}
	awaitHandshakes(20)
	for gen := 1; gen <= 3; gen++ {
		want := fmt.Sprintf("gen%d", gen)
		c, k := ca.issue(t, want, []string{"h.test"}, "ecdsa", false)
		replace(t, cf.CertFile, c)
		awaitReload(true) // the new certificate with the old key: refused, old pair kept
		if cn := awaitHandshakes(cap(progress) + 20); cn != fmt.Sprintf("gen%d", gen-1) {
			t.Fatalf("between the two renames, served %q", cn)
		}
		replace(t, cf.KeyFile, k)
		awaitReload(false)
		if cn := cfg.Certificates()[0].Leaf.Subject.CommonName; cn != want {
			t.Fatalf("loaded %q, want %q", cn, want)
		}
		// Every handshake that starts now gets the new certificate.
		st, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatal(err)
		}
		if cn := st.PeerCertificates[0].Subject.CommonName; cn != want {
			t.Fatalf("after reload, served %q, want %q", cn, want)
		}
		for len(progress) > 0 { // drop what was queued before the swap
			<-progress
		}
		if cn := awaitHandshakes(cap(progress) + 20); cn != want {
			t.Fatalf("clients got %q after reload, want %q", cn, want)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := fail.Load(); n > 0 {
		t.Errorf("%d of %d handshakes failed; first: %v", n, handshakes.Load(), firstErr.Load())
	}
	t.Logf("%d handshakes over 3 swaps, none failed", handshakes.Load())
}

func TestReloadKeepsOldOnBadFiles(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "site", "old", []string{"h.test"}, "ecdsa")
	cfg, err := New(Options{Certificates: []CertFile{cf}})
	if err != nil {
		t.Fatal(err)
	}
	replace(t, cf.KeyFile, []byte("garbage"))
	if err := cfg.Reload(); err == nil {
		t.Fatal("Reload accepted a bad key")
	}
	st, err := dial(serve(t, cfg), &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
	if err != nil {
		t.Fatal(err)
	}
	if cn := st.PeerCertificates[0].Subject.CommonName; cn != "old" {
		t.Errorf("served %q", cn)
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	// The test holds its own SIGHUP registration, so the signal never ends the process,
	// even before Run registers its own.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "site", "old", []string{"h.test"}, "ecdsa")
	reloaded := make(chan error, 1)
	cfg, err := New(Options{
		Certificates:  []CertFile{cf},
		WatchInterval: -1,
		OnReload: func(err error) {
			select {
			case reloaded <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runConfig(t, cfg)
	c, k := ca.issue(t, "new", []string{"h.test"}, "ecdsa", false)
	writeCert(t, dir, "site", c, k)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // until Run has registered for SIGHUP
	defer tick.Stop()
	for {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		select {
		case err := <-reloaded:
			if err != nil {
				t.Fatal(err)
			}
			if cn := cfg.Certificates()[0].Leaf.Subject.CommonName; cn != "new" {
				t.Errorf("after SIGHUP, certificate %q", cn)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("no reload after SIGHUP")
		}
	}
}

func TestTicketKeysAcrossProcesses(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "site", "site", []string{"h.test"}, "ecdsa")
	keyFile := filepath.Join(dir, "tickets.key")
	if err := RotateTicketKeyFile(keyFile, 3); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != TicketKeySize {
		t.Fatalf("key file: %v %v", fi, err)
	}
	newCfg := func(keys string) *Config {
		cfg, err := New(Options{Certificates: []CertFile{cf}, TicketKeyFile: keys})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, b := newCfg(keyFile), newCfg(keyFile) // two processes sharing the file
	addrA, addrB := serve(t, a), serve(t, b)
	client := func() *ctls.Config {
		return &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), ClientSessionCache: ctls.NewLRUClientSessionCache(8)}
	}
	resumes := func(cc *ctls.Config, addr string) bool {
		t.Helper()
		st, err := dial(addr, cc)
		if err != nil {
			t.Fatal(err)
		}
		return st.DidResume
	}

	cc := client()
	if resumes(cc, addrA) {
		t.Fatal("first handshake resumed")
	}
	if !resumes(cc, addrB) {
		t.Error("a ticket from A did not resume on B")
	}

	// Rotation: a ticket issued before it still resumes after it.
	cc = client()
	resumes(cc, addrA)
	if err := RotateTicketKeyFile(keyFile, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if !resumes(cc, addrB) {
		t.Error("a ticket under the previous key did not resume after rotation")
	}

	// A process with other keys cannot resume.
	other := filepath.Join(dir, "other.key")
	if err := RotateTicketKeyFile(other, 0); err != nil {
		t.Fatal(err)
	}
	cc = client()
	resumes(cc, addrA)
	if resumes(cc, serve(t, newCfg(other))) {
		t.Error("a ticket resumed under a different key")
	}

	// Without a file each Config has its own keys, rotated by crypto/tls.
	own := newCfg("")
	addrOwn := serve(t, own)
	cc = client()
	resumes(cc, addrOwn)
	if !resumes(cc, addrOwn) {
		t.Error("no resumption with automatic keys")
	}
}

func TestRotateTicketKeyFileKeeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	var prev []byte
	for i := range 5 {
		if err := RotateTicketKeyFile(path, 3); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 3) * TicketKeySize; len(b) != want {
			t.Fatalf("after %d rotations: %d bytes, want %d", i+1, len(b), want)
		}
		if prev != nil && string(b[TicketKeySize:]) != string(prev[:len(b)-TicketKeySize]) {
			t.Fatal("older keys not kept in order behind the new one")
		}
		prev = b
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RotateTicketKeyFile(path, 3); err == nil {
		t.Error("rotated a malformed file")
	}
}
