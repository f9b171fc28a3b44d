package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/sdnotify"
	"github.com/gotthard-proxy/gotthard/upgrade"
)

// Errors returned by [Server] methods.
var (
	// ErrServerClosed is returned by Run and Add once the Server has run or was shut down
	// before running. A Server runs at most once.
	ErrServerClosed = errors.New("server: closed")
	// ErrRunning is returned by Run and Add while Run is in progress.
	ErrRunning = errors.New("server: already running")
	// ErrNoServices is returned by Run when no service was added.
	ErrNoServices = errors.New("server: no services")
)

// Options configures a [Server]. The zero value is valid.
type Options struct {
	// Config is the server configuration; New keeps a copy. If nil, [DefaultConfig].
	Config *Config
	// Logger receives one Info line per lifecycle event (listening, started, signal,
	// shutdown, stopped) and service failures. If nil, [slog.Default].
	Logger *slog.Logger
	// Listen creates the listener for an endpoint that no old process handed over (see
	// [Options.Upgrade]). If nil, the Server uses net.Listen; for a Unix socket it first
	// removes a stale socket file and it removes the file on exit (see [Server.Run]).
	Listen func(ep Endpoint) (net.Listener, error)
	// Upgrade marks a process started for a graceful upgrade (the -u flag): before
	// listening, it binds Config.UpgradeSock and waits (Config.UpgradeTimeoutSeconds) for
	// the running process, sent SIGQUIT, to hand over its listening sockets; endpoints it
	// lacks are listened afresh. A process started by a re-executing one ([Server.Reexec],
	// SIGUSR2) takes them over without it. If false, a normal start.
	Upgrade bool
	// NoSignals stops Run from handling SIGTERM, SIGINT, SIGQUIT and SIGUSR2; stop the
	// Server with the context of [Server.RunContext], [Server.Shutdown] or [Server.Close],
	// and upgrade it with [Server.HandOver] or [Server.Reexec], instead. Use it when the
	// program handles signals itself or runs several Servers. If false, Run handles them.
	NoSignals bool
	// Test makes Run check instead of serving (the -t flag): it calls the Check method of
	// every added service that implements [Checker] and returns [ErrConfigTested], or the
	// problems found, without listening, writing the pid file or starting anything. If
	// false, Run serves.
	Test bool
	// App, if not nil, is a pointer to the application's own configuration struct (with
	// yaml tags). [NewFromArgs] and [NewFromFlags] decode the -c file into it as well as
	// into [Config]: a top-level key that neither Config nor App has is an error with its
	// line, and so is a value of the wrong type for an App key (see
	// [LoadConfigWithApp]). The fields the file leaves out keep the values App had. If
	// nil, the file may hold only the server's keys.
	App any
}

// state is the lifecycle state of a Server.
type state int

const (
	stateNew state = iota
	stateRunning
	stateClosed
)

// Server runs listening services and background services with one lifecycle: it creates
// their listeners, starts each in its own goroutine, handles signals and shuts them all
// down together. Create it with [New]; its methods are safe for concurrent use.
//
// A Server runs once. The lifecycle is visible through [Server.Ready] and [Server.Done];
// the bound addresses (useful with ":0") through [Server.Addrs].
type Server struct {
	// Immutable after New.
	cfg       *Config
	log       *slog.Logger
	listen    func(Endpoint) (net.Listener, error)
	upgrade   bool
	noSignals bool
	test      bool
	ready     chan struct{} // closed when every service has started
	done      chan struct{} // closed when Run has returned or the Server closed unused

	// upgrades carries hand-over requests to Run's loop.
	upgrades chan upgradeRequest

	// Stop requests, each closed at most once.
	gracefulOnce sync.Once
	graceful     chan struct{}
	fastOnce     sync.Once
	fast         chan struct{}

	mu       sync.Mutex
	state    state
	services []Service
	addrs    map[string][]net.Addr
}

// New validates opts and returns a Server ready for [Server.Add]. An invalid Options.Config
// yields its [Config.Validate] error; an Options.App that is not a non-nil pointer is an
// error too (New itself reads no file into it: [NewFromArgs] does).
func New(opts Options) (*Server, error) {
	cfg := DefaultConfig()
	if opts.Config != nil {
		cfg = opts.Config.clone()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.App != nil {
		if err := checkApp(opts.App); err != nil {
			return nil, err
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{
		cfg:       cfg,
		log:       log,
		listen:    opts.Listen,
		upgrade:   opts.Upgrade,
		noSignals: opts.NoSignals,
		test:      opts.Test,
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
		graceful:  make(chan struct{}),
		upgrades:  make(chan upgradeRequest),
		fast:      make(chan struct{}),
		addrs:     make(map[string][]net.Addr),
	}, nil
}

// Config returns a copy of the configuration the Server runs with, for services that read
// their settings (upstream_keepalive_pool_size, max_retries, ca_file) from it.
func (s *Server) Config() *Config { return s.cfg.clone() }

// Add registers svc to be run by [Server.Run]. It fails if svc implements neither
// [ListeningService] nor [BackgroundService], if its name is empty or already taken, or if
// Run has started.
func (s *Server) Add(svc Service) error {
	if svc == nil {
		return errors.New("server: add: nil service")
	}
	name := svc.Name()
	_, listening := svc.(ListeningService)
	_, background := svc.(BackgroundService)
	if !listening && !background {
		return fmt.Errorf("server: add %q: %T implements neither ListeningService nor BackgroundService", name, svc)
	}
	if name == "" {
		return fmt.Errorf("server: add: %T has an empty name", svc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return fmt.Errorf("server: add %q: %w", name, ErrRunning)
	case stateClosed:
		return fmt.Errorf("server: add %q: %w", name, ErrServerClosed)
	}
	for _, other := range s.services {
		if other.Name() == name {
			return fmt.Errorf("server: add: duplicate service name %q", name)
		}
	}
	s.services = append(s.services, svc)
	return nil
}

// Ready returns a channel closed once every listener is bound, every service started and
// the signal handlers installed. It is never closed if Run fails before that, so wait on
// [Server.Done] as well.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Done returns a channel closed when Run has returned (or when the Server was shut down
// before it ran).
func (s *Server) Done() <-chan struct{} { return s.done }

// Addrs returns the bound addresses of the named listening service's listeners, in the
// order of its endpoints. It returns nil before [Server.Ready] is closed and for unknown
// names.
func (s *Server) Addrs(name string) []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs[name])
}

// Shutdown starts a graceful shutdown, as SIGTERM does, and waits for Run to return. If
// ctx ends first it switches to a fast shutdown (as SIGINT does) and returns ctx.Err()
// without waiting further. Called before Run, it marks the Server closed.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closeUnused() {
		return nil
	}
	s.gracefulOnce.Do(func() { close(s.graceful) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.fastOnce.Do(func() { close(s.fast) })
		return ctx.Err()
	}
}

// Close starts a fast shutdown, as SIGINT does, and waits for Run to return. Called before
// Run, it marks the Server closed. It returns nil.
func (s *Server) Close() error {
	if s.closeUnused() {
		return nil
	}
	s.fastOnce.Do(func() { close(s.fast) })
	<-s.done
	return nil
}

// closeUnused closes a Server that never ran and reports whether it did. A Server that is
// closed already also counts as handled.
func (s *Server) closeUnused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateNew:
		s.state = stateClosed
		close(s.done)
		return true
	case stateClosed:
		return true
	}
	return false
}

// Run runs the Server until a signal stops it; it is RunContext with a context that is
// never canceled.
func (s *Server) Run() error { return s.RunContext(context.Background()) }

// RunContext runs every added service and blocks until they have all stopped.
//
// In test mode ([Options.Test], the -t flag) it only checks: see [Checker]. It returns
// [ErrConfigTested] if every service passed, or their problems joined, and starts nothing.
//
// Start-up: with Config.Daemon set (and not already in the daemon), it starts a detached
// copy of the binary (see [Config.Daemon]) and returns nil at once, so the original process
// exits with status 0. Otherwise it sets GOMAXPROCS from Config.Threads, installs the
// signal handlers, takes over the listeners of the old process in an upgrade (see
// [Options.Upgrade]), creates one listener per remaining endpoint (Options.Listen, or
// net.Listen), starts each service in its own goroutine, writes Config.PidFile, tells the
// old process (in an upgrade) and systemd (READY=1, with Type=notify) that it serves and
// closes [Server.Ready]. If a listener cannot be created it closes the others and returns
// the error; no service runs, and an old process goes on serving.
//
// Upgrade: SIGQUIT ([Server.HandOver]) hands the listeners to a new process waiting on
// Config.UpgradeSock; SIGUSR2 ([Server.Reexec]) starts the binary anew and hands them to
// it. Once the new process serves, this one stops accepting and drains as in a graceful
// shutdown, without the accepting part of the grace period. If the hand-over fails, it
// logs why and goes on serving.
//
// Stop: a graceful shutdown starts when ctx is canceled, on SIGTERM, on [Server.Shutdown]
// or when a service fails. Listeners keep accepting for Config.GracePeriodSeconds, then
// every listening service's Shutdown is called with a context bounded by
// Config.GracefulShutdownTimeoutSeconds (HTTP/1.x connections close after their
// in-flight request, HTTP/2 ones get GOAWAY), and the long-lived streams of services that
// implement [StreamCloser] are closed; once Shutdown has returned, background services
// are canceled. A fast shutdown (SIGINT, [Server.Close], or any second signal during a
// graceful one) calls every listening service's Close and cancels background services
// at once.
//
// RunContext returns after every Serve, Shutdown and Run call has returned; it has then
// closed the listeners it created, removed the Unix socket files and the pid file it wrote
// (unless another process has replaced them) and stopped handling signals. It returns nil
// after a requested shutdown, or the error (wrapped, with the service's name) of the first
// service that failed before shutdown began; errors returned during shutdown are logged.
// A BackgroundService that ignores cancellation keeps RunContext from returning.
func (s *Server) RunContext(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateRunning:
		s.mu.Unlock()
		return ErrRunning
	case stateClosed:
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.state = stateRunning
	svcs := slices.Clone(s.services)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state = stateClosed
		s.mu.Unlock()
		close(s.done)
	}()

	if s.test {
		return s.check(svcs)
	}
	if len(svcs) == 0 {
		return ErrNoServices
	}
	if s.cfg.Daemon && os.Getenv(daemonEnv) == "" {
		pid, err := daemonize(s.cfg.ErrorLog)
		if err != nil {
			return err
		}
		// Debug, not Info: the original process of a daemon stays silent.
		s.log.Debug("server: daemon started", "pid", pid)
		return nil
	}
	os.Unsetenv(daemonEnv)
	if s.cfg.Threads > 0 {
		runtime.GOMAXPROCS(s.cfg.Threads)
	}

	var sigs chan os.Signal
	if !s.noSignals {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}

	run, err := s.start(ctx, svcs, sigs)
	if err != nil {
		return err
	}
	defer run.cleanup()
	return run.loop(ctx, sigs)
}

// A run holds the state of one execution of RunContext; only its goroutine touches it.
type run struct {
	s             *Server
	listening     []ListeningService
	bound         [][]*boundListener
	results       chan result // one per Serve, Shutdown and Run call
	pending       int         // calls not yet reported on results
	cancelBg      context.CancelFunc
	stopping      bool  // shutdown has begun
	firstErr      error // first failure before stopping
	pidWritten    bool
	handedOver    bool                // a new process serves on the listeners
	upgraded      chan upgradeOutcome // the outcome of the hand-over in progress
	cancelUpgrade context.CancelFunc  // ends the hand-over in progress; nil if none
}

// A result reports the return of a service's Serve, Run or Shutdown.
type result struct {
	name     string
	op       string // "serve", "run" or "shutdown"
	err      error
	canceled bool // Run's context was canceled before it returned
}

// start binds the listeners, writes the pid file and starts every service.
func (s *Server) start(ctx context.Context, svcs []Service, sigs <-chan os.Signal) (*run, error) {
	r := &run{s: s, results: make(chan result, 2*len(svcs)), upgraded: make(chan upgradeOutcome, 1)}
	h, err := s.takeOver(ctx, sigs)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*run, error) {
		if h != nil {
			if rerr := h.Refuse(err); rerr != nil {
				s.log.Warn("server: upgrade: could not tell the old process", "error", rerr)
			}
		}
		r.cleanup()
		return nil, err
	}
	var background []BackgroundService
	for _, svc := range svcs {
		ls, ok := svc.(ListeningService)
		if !ok {
			background = append(background, svc.(BackgroundService))
			continue
		}
		bls, err := s.bind(ls, h)
		if err != nil {
			return fail(err)
		}
		r.listening = append(r.listening, ls)
		r.bound = append(r.bound, bls)
	}
	if h != nil {
		for _, l := range h.CloseUnused() {
			s.log.Info("server: upgrade: endpoint not in this configuration, closed", "endpoint", l.String())
		}
	}
	if s.cfg.PidFile != "" {
		if err := writePidFile(s.cfg.PidFile); err != nil {
			return fail(err)
		}
		r.pidWritten = true
	}

	for i, ls := range r.listening {
		lns := make([]net.Listener, len(r.bound[i]))
		for j, b := range r.bound[i] {
			lns[j] = b.ln
		}
		r.pending++
		go func() {
			r.results <- result{name: ls.Name(), op: "serve", err: ls.Serve(lns)}
		}()
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	r.cancelBg = cancel
	for _, bs := range background {
		r.pending++
		go func() {
			err := bs.Run(bgCtx)
			r.results <- result{name: bs.Name(), op: "run", err: err, canceled: bgCtx.Err() != nil}
		}()
	}
	s.log.Info("server: started", "pid", os.Getpid(), "services", len(svcs))
	if h != nil {
		if err := h.Serving(); err != nil {
			s.log.Warn("server: upgrade: the old process was not told that this one serves; stop it by hand", "error", err)
		} else {
			s.log.Info("server: serving the listeners handed over", "from", h.PID(), "listeners", len(h.Listeners()))
		}
	}
	notify(s.log, sdnotify.MainPID(os.Getpid()), sdnotify.Ready)
	close(s.ready)
	return r, nil
}

// bind creates the listeners of ls, taking those h holds first, and records their
// addresses.
func (s *Server) bind(ls ListeningService, h *upgrade.Handover) ([]*boundListener, error) {
	name := ls.Name()
	var eps []Endpoint
	for _, a := range ls.Endpoints() {
		ep := Endpoint{Network: a.Network(), Address: a.String()}
		if t, ok := a.(interface{ TLS() bool }); ok {
			ep.TLS = t.TLS()
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("server: service %q has no endpoints", name)
	}
	var bls []*boundListener
	fail := func(err error) ([]*boundListener, error) {
		for _, b := range bls {
			b.ln.Close()
			b.cleanup()
		}
		return nil, fmt.Errorf("server: service %q: %w", name, err)
	}
	for _, ep := range eps {
		var b *boundListener
		if b = inherited(h, ep); b != nil {
			bls = append(bls, b)
			s.log.Info("server: listening on an inherited socket", "service", name, "network", ep.Network, "address", b.ln.Addr().String())
			continue
		}
		if s.listen != nil {
			ln, err := s.listen(ep)
			if err != nil {
				return fail(err)
			}
			b = &boundListener{ln: ln, ep: ep}
		} else {
			if err := checkEndpoint(ep); err != nil {
				return fail(err)
			}
			var err error
			if b, err = listenDefault(ep); err != nil {
				return fail(err)
			}
			b.ep = ep
		}
		bls = append(bls, b)
		s.log.Info("server: listening", "service", name, "network", ep.Network, "address", b.ln.Addr().String())
	}
	addrs := make([]net.Addr, len(bls))
	for i, b := range bls {
		addrs[i] = b.ln.Addr()
	}
	s.mu.Lock()
	s.addrs[name] = addrs
	s.mu.Unlock()
	return bls, nil
}

// cleanup closes the listeners (they may be closed already), removes the socket files and
// the pid file, and logs the end.
func (r *run) cleanup() {
	for _, bls := range r.bound {
		for _, b := range bls {
			b.ln.Close()
			if !r.handedOver {
				b.cleanup()
			}
		}
	}
	if r.pidWritten {
		if err := removePidFile(r.s.cfg.PidFile); err != nil {
			r.s.log.Warn("server: pid file not removed", "error", err)
		}
	}
	if r.cancelBg != nil {
		r.cancelBg()
		r.s.log.Info("server: stopped", "pid", os.Getpid())
	}
}

// mode is the kind of stop the loop is in.
type mode int

const (
	modeRun      mode = iota
	modeGraceful      // a graceful shutdown
	modeUpgraded      // a new process serves: drain
	modeFast
)

// loop waits for a reason to stop, performs the shutdown and waits for every goroutine.
func (r *run) loop(ctx context.Context, sigs <-chan os.Signal) error {
	s := r.s
	m := modeRun
	since := time.Time{} // when the stop was asked for; the grace period counts from it
	for m == modeRun && r.pending > 0 {
		select {
		case <-ctx.Done():
			s.log.Info("server: context canceled")
			m = modeGraceful
		case <-s.graceful:
			m = modeGraceful
		case <-s.fast:
			m = modeFast
		case sig := <-sigs:
			m = r.onSignal(sig)
		case res := <-r.results:
			if r.handle(res) {
				m = modeGraceful
			}
		case req := <-s.upgrades:
			r.startUpgrade(req)
		case out := <-r.upgraded:
			if m = r.upgradeDone(out); m == modeUpgraded {
				since = out.req.at
			}
		}
	}
	if since.IsZero() {
		since = time.Now()
	}
	r.stopping = true
	if m != modeUpgraded {
		// After an upgrade the new process is the service's main one.
		notify(s.log, sdnotify.Stopping)
	}
	if m == modeGraceful || m == modeUpgraded {
		m = r.drain(sigs, since, m == modeGraceful)
	}
	if m == modeFast {
		r.closeAll()
	}
	r.cancelBg()
	if r.cancelUpgrade != nil { // a hand-over in progress
		r.cancelUpgrade()
		r.upgradeDone(<-r.upgraded)
	}
	for r.pending > 0 {
		select {
		case res := <-r.results:
			r.handle(res)
		case sig := <-sigs:
			s.log.Info("server: signal ignored, shutdown in progress", "signal", sig.String())
		}
	}
	return r.firstErr
}

// onSignal logs sig and returns the stop it asks for, or starts the upgrade it asks for.
func (r *run) onSignal(sig os.Signal) mode {
	r.s.log.Info("server: signal received", "signal", sig.String())
	switch sig {
	case syscall.SIGINT:
		return modeFast
	case syscall.SIGQUIT:
		r.startUpgrade(upgradeRequest{at: time.Now()})
		return modeRun
	case syscall.SIGUSR2:
		r.startUpgrade(upgradeRequest{reexec: true, at: time.Now()})
		return modeRun
	}
	return modeGraceful
}

// drain runs a graceful shutdown, or the drain after an upgrade, whose grace period
// began at since; with accept, the listeners keep accepting during it. It returns
// modeFast if it was cut short by a signal, a Close or an expired Shutdown context.
func (r *run) drain(sigs <-chan os.Signal, since time.Time, accept bool) mode {
	s := r.s
	grace := s.cfg.GracePeriod()
	streamsAt := since.Add(grace)
	if d := time.Until(streamsAt); accept && d > 0 {
		s.log.Info("server: grace period started", "grace_period", grace)
		t := time.NewTimer(d)
		defer t.Stop()
	wait:
		for {
			select {
			case <-t.C:
				break wait
			case <-s.fast:
				return modeFast
			case sig := <-sigs:
				s.log.Info("server: second signal, switching to fast shutdown", "signal", sig.String())
				return modeFast
			case res := <-r.results:
				r.handle(res)
			}
		}
	}
	timeout := s.cfg.GracefulShutdownTimeout()
	s.log.Info("server: graceful shutdown started", "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutdowns := len(r.listening)
	for _, ls := range r.listening {
		r.pending++
		go func() {
			r.results <- result{name: ls.Name(), op: "shutdown", err: ls.Shutdown(ctx)}
		}()
	}
	var streams <-chan time.Time
	if d := time.Until(streamsAt); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		streams = t.C
	} else {
		r.closeStreams()
	}
	for shutdowns > 0 {
		select {
		case <-streams:
			streams = nil
			r.closeStreams()
		case <-s.fast:
			cancel()
			return modeFast
		case sig := <-sigs:
			s.log.Info("server: second signal, switching to fast shutdown", "signal", sig.String())
			cancel()
			return modeFast
		case res := <-r.results:
			if res.op == "shutdown" {
				shutdowns--
			}
			r.handle(res)
		}
	}
	return modeGraceful
}

// closeStreams calls CloseStreams on every listening service that has it, each in a
// goroutine of its own.
func (r *run) closeStreams() {
	for _, ls := range r.listening {
		if sc, ok := ls.(StreamCloser); ok {
			r.s.log.Info("server: grace period over, closing long-lived streams", "service", ls.Name())
			r.pending++
			go func() {
				sc.CloseStreams()
				r.results <- result{name: ls.Name(), op: "streams"}
			}()
		}
	}
}

// closeAll closes every listening service at once.
func (r *run) closeAll() {
	r.s.log.Info("server: fast shutdown started")
	for _, ls := range r.listening {
		if err := ls.Close(); err != nil {
			r.s.log.Warn("server: close service", "service", ls.Name(), "error", err)
		}
	}
}

// handle accounts for a returned call and logs it. It reports whether the call was a
// failure that should shut the Server down.
func (r *run) handle(res result) bool {
	r.pending--
	log := r.s.log
	switch {
	case res.op == "streams":
		return false
	case res.op == "shutdown":
		switch {
		case errors.Is(res.err, context.Canceled):
			// Canceled by a switch to fast shutdown, which is logged already.
		case errors.Is(res.err, context.DeadlineExceeded):
			log.Warn("server: graceful shutdown timed out, connections closed", "service", res.name)
		case res.err != nil:
			log.Warn("server: service shutdown failed", "service", res.name, "error", res.err)
		}
		return false
	case res.err == nil || (res.canceled && errors.Is(res.err, context.Canceled)):
		log.Info("server: service stopped", "service", res.name)
		return false
	case r.stopping:
		log.Warn("server: service returned an error during shutdown", "service", res.name, "error", res.err)
		return false
	}
	log.Error("server: service failed", "service", res.name, "error", res.err)
	if r.firstErr == nil {
		r.firstErr = fmt.Errorf("server: service %q: %w", res.name, res.err)
	}
	return true
}

// check runs the Check of every service that implements [Checker], for test mode.
func (s *Server) check(svcs []Service) error {
	var errs []error
	for _, svc := range svcs {
		c, ok := svc.(Checker)
		if !ok {
			continue
		}
		if err := c.Check(); err != nil {
			errs = append(errs, fmt.Errorf("server: service %q: %w", svc.Name(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return ErrConfigTested
}
