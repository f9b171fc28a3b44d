package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// checkedService is a ListeningService whose Check returns err; it fails the test if
// the Server starts it.
type checkedService struct {
	t       *testing.T
	name    string
	err     error
	checked int
}

func (c *checkedService) Name() string { return c.name }
func (c *checkedService) Check() error { c.checked++; return c.err }
func (c *checkedService) Endpoints() []net.Addr {
	return []net.Addr{Endpoint{Network: "tcp", Address: "127.0.0.1:0"}.Addr()}
}
func (c *checkedService) Serve(lns []net.Listener) error {
	c.t.Errorf("service %s served in test mode", c.name)
	for _, ln := range lns {
		ln.Close()
	}
	return nil
}
func (c *checkedService) Shutdown(context.Context) error { return nil }
func (c *checkedService) Close() error                   { return nil }

func TestRunTestModeChecksServices(t *testing.T) {
	tests := []struct {
		name    string
		errs    []error // one service per entry, with that Check result
		wantErr []string
	}{
		{name: "no services", wantErr: nil},
		{name: "all pass", errs: []error{nil, nil}},
		{name: "one fails", errs: []error{nil, errors.New("open /etc/gw/missing.pem: no such file or directory")},
			wantErr: []string{`server: service "s1": open /etc/gw/missing.pem`}},
		{name: "two fail", errs: []error{errors.New("bad a"), errors.New("bad b")},
			wantErr: []string{`server: service "s0": bad a`, `server: service "s1": bad b`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := writeConf(t, "version: 1\npid_file: "+t.TempDir()+"/pid\n")
			srv, err := NewFromArgs([]string{"-t", "-c", conf}, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var svcs []*checkedService
			for i, e := range tt.errs {
				s := &checkedService{t: t, name: "s" + string(rune('0'+i)), err: e}
				svcs = append(svcs, s)
				if err := srv.Add(s); err != nil {
					t.Fatal(err)
				}
			}
			// A background service without Check is not run either.
			if err := srv.Add(failIfRun{t}); err != nil {
				t.Fatal(err)
			}
			err = srv.Run()
			if tt.wantErr == nil {
				if !errors.Is(err, ErrConfigTested) {
					t.Fatalf("Run = %v, want ErrConfigTested", err)
				}
			} else {
				if err == nil || errors.Is(err, ErrConfigTested) {
					t.Fatalf("Run = %v, want the check errors", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Run = %q, want it to contain %q", err, w)
					}
				}
			}
			for _, s := range svcs {
				if s.checked != 1 {
					t.Errorf("%s checked %d times, want 1", s.name, s.checked)
				}
			}
			if srv.Addrs("s0") != nil {
				t.Error("test mode bound a listener")
			}
			if err := srv.Run(); !errors.Is(err, ErrServerClosed) {
				t.Errorf("second Run = %v, want ErrServerClosed", err)
			}
		})
	}
}

type failIfRun struct{ t *testing.T }

func (failIfRun) Name() string { return "bg" }
func (f failIfRun) Run(ctx context.Context) error {
	f.t.Error("background service ran in test mode")
	return nil
}

func TestRunWithoutTestModeDoesNotCheck(t *testing.T) {
	srv, err := New(Options{Logger: testLogger(t), NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	bg := &blockingBackground{}
	if err := srv.Add(bg); err != nil {
		t.Fatal(err)
	}
	go func() {
		<-srv.Ready()
		srv.Shutdown(context.Background())
	}()
	if err := srv.Run(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

type blockingBackground struct{}

func (*blockingBackground) Name() string                  { return "block" }
func (*blockingBackground) Check() error                  { return errors.New("checked outside test mode") }
func (*blockingBackground) Run(ctx context.Context) error { <-ctx.Done(); return nil }
