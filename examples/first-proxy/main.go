// Command first-proxy is the program docs/first-proxy.md ends with. It routes /api/ to
// one origin and the rest to another, answers /healthz itself, tags and logs requests,
// reads its own keys from the server's YAML file, and serves TLS when given a certificate.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// Config is the program's own part of the configuration file.
type Config struct {
	Listen string    `yaml:"listen"` // address for plain HTTP clients
	API    string    `yaml:"api"`    // origin for /api/
	Web    string    `yaml:"web"`    // origin for the rest
	TLS    TLSConfig `yaml:"tls"`
}

// TLSConfig turns TLS on when Cert is set.
type TLSConfig struct {
	Listen string `yaml:"listen"` // address for TLS clients
	Cert   string `yaml:"cert"`   // PEM certificate chain file
	Key    string `yaml:"key"`    // PEM private key file
}

// Router sends /api/ to one origin and everything else to another.
type Router struct {
	proxy.Phases[*ReqCtx]
	api, web *proxy.Peer
	nextID   atomic.Uint64
	log      *slog.Logger
}

// ReqCtx is made fresh for every request by NewCtx.
type ReqCtx struct {
	id    string
	route string
}

// A phase with a wrong signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*ReqCtx] = (*Router)(nil)

func (r *Router) NewCtx() *ReqCtx {
	return &ReqCtx{id: strconv.FormatUint(r.nextID.Add(1), 10)}
}

// RequestFilter answers some requests itself.
func (r *Router) RequestFilter(ctx context.Context, s *proxy.Session, c *ReqCtx) (proxy.Result, error) {
	if s.Request().Path() == "/healthz" {
		return proxy.Handled, s.Respond(200, "ok\n")
	}
	return proxy.Continue, nil
}

func (r *Router) UpstreamPeer(ctx context.Context, s *proxy.Session, c *ReqCtx) (*proxy.Peer, error) {
	if strings.HasPrefix(s.Request().Path(), "/api/") {
		c.route = "api"
		return r.api, nil
	}
	c.route = "web"
	return r.web, nil
}

// UpstreamRequestFilter changes the request sent upstream (a fresh copy on each attempt).
func (r *Router) UpstreamRequestFilter(ctx context.Context, s *proxy.Session, c *ReqCtx, req *message.RequestHeader) error {
	req.Header.Set("X-Request-Id", c.id)
	return nil
}

// Logging runs once per request, whatever happened.
func (r *Router) Logging(ctx context.Context, s *proxy.Session, c *ReqCtx, err error) {
	t := s.Timing()
	r.log.Info("access", "id", c.id, "route", c.route, "method", s.Request().Method,
		"target", s.Request().Target, "status", s.Status(), "duration", t.End.Sub(t.Start))
}

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, server.ErrConfigTested) { // -t: everything checked, nothing served
		fmt.Println("configuration OK")
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	// The defaults; the file's keys override them.
	conf := Config{
		Listen: "127.0.0.1:6188",
		API:    "127.0.0.1:9001",
		Web:    "127.0.0.1:9002",
		TLS:    TLSConfig{Listen: "127.0.0.1:6443"},
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromArgs(args, server.Options{Logger: logger, App: &conf})
	if err != nil {
		return err
	}
	cfg := srv.Config() // the server's keys, for the service to use
	api, err := proxy.NewPeer(conf.API)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	web, err := proxy.NewPeer(conf.Web)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	r := &Router{api: api, web: web, log: logger}
	svc, err := proxy.NewService("router", r, proxy.ServiceOptions{
		Logger:                    logger,
		UpstreamKeepalivePoolSize: cfg.UpstreamKeepalivePoolSize, // 0: the default, 128
		MaxRetries:                cfg.MaxRetries,                // 0: the default, 3
	})
	if err != nil {
		return err
	}
	svc.AddTCP(conf.Listen)
	if conf.TLS.Cert != "" {
		tcfg, err := gtls.New(gtls.Options{
			Logger:       logger,
			Certificates: []gtls.CertFile{{CertFile: conf.TLS.Cert, KeyFile: conf.TLS.Key}},
		})
		if err != nil { // a missing or unreadable file, or a key that does not match
			return err
		}
		svc.AddTLS(conf.TLS.Listen, tcfg)
		if err := srv.Add(tcfg); err != nil { // reloads the files on change and on SIGHUP
			return err
		}
	}
	if err := srv.Add(svc); err != nil {
		return err
	}
	return srv.Run() // with -t: checks the services and returns server.ErrConfigTested
}
