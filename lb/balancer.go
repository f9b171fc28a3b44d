package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/observe"
)

// ErrNoBackend is returned by Select when the set has no backend left to try.
var ErrNoBackend = errors.New("lb: no backend available")

// Algorithm names a selection algorithm.
type Algorithm uint8

const (
	// RoundRobin is nginx's smooth weighted round robin: each backend gets its weight's
	// share, spread evenly over the sequence.
	RoundRobin Algorithm = iota
	// Random picks at random in proportion to weight.
	Random
	// LeastConn picks the backend with the fewest in-flight requests per unit of
	// weight; ties are broken from a random starting point.
	LeastConn
	// PeakEWMA picks the better of two random backends by a score of latency (a
	// peak-sensitive moving average) times in-flight requests, divided by weight. Slow
	// or failing backends get less traffic without being ejected.
	PeakEWMA
	// Ketama is consistent hashing with nginx's "hash $key consistent" mapping: 160
	// points per unit of weight on a crc32 ring.
	Ketama
	// Maglev is Google's Maglev consistent hashing over a lookup table of 65537 entries:
	// a more even spread than Ketama and a constant-time lookup.
	Maglev
)

var algorithmNames = [...]string{"round-robin", "random", "least-conn", "ewma", "ketama", "maglev"}

// String returns the algorithm's name as ParseAlgorithm accepts it.
func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm returns the Algorithm named s: "round-robin", "random", "least-conn",
// "ewma", "ketama" or "maglev".
func ParseAlgorithm(s string) (Algorithm, error) {
	for i, n := range algorithmNames {
		if s == n {
			return Algorithm(i), nil
		}
	}
	return 0, fmt.Errorf("lb: unknown algorithm %q (want one of round-robin, random, least-conn, ewma, ketama, maglev)", s)
}

// Hashed reports whether the algorithm maps a key to a backend (Ketama, Maglev).
func (a Algorithm) Hashed() bool { return a == Ketama || a == Maglev }

// Options configures a LoadBalancer whose backends carry a value of type T (what
// Attach makes for each, typically the *proxy.Peer to send requests to). The zero
// value is a round-robin balancer with no backends, passive outlier detection on its
// defaults and no active health checks.
type Options[T any] struct {
	// Name is the balancer's name as a background service. If empty, "lb".
	Name string
	// Algorithm is the selection algorithm. The zero value is RoundRobin.
	Algorithm Algorithm
	// Backends is the initial set. The balancer keeps a copy.
	Backends []Backend
	// Discovery, if not nil, replaces the set each time it reports one, while Run runs.
	Discovery Discovery
	// HealthCheck, if not nil, is the active health check Run performs on every backend.
	HealthCheck *HealthCheck
	// Outlier configures passive outlier detection.
	Outlier OutlierOptions
	// RetryBudget caps the retries that [Failover] asks for, over all the requests
	// of this balancer. The zero value allows retries of up to 20% of requests over
	// 10s, plus 10 per second.
	RetryBudget RetryBudgetOptions
	// Attach, if not nil, is called once for each backend that enters the set (and
	// again if its weight or metadata changes); its result is Target.Value and
	// Pick.Value, typed. Use it to make a backend's *proxy.Peer once. It must not
	// block. If nil, every backend's value is T's zero value.
	Attach func(Backend) T
	// OnHealthChange, if not nil, is called on every change of a backend's health or
	// ejection, from the goroutine that noticed it. It must not block.
	OnHealthChange func(HealthEvent)
	// Observers, if any, see every health change as OnHealthChange does (after it), as
	// an observe.Health: a metrics adapter or a status page. Each must not block. A nil
	// element is refused by New.
	Observers []observe.HealthObserver
	// DecayTime is the time constant of the PeakEWMA score: how fast the memory of a
	// slow sample fades. If zero, 10s.
	DecayTime time.Duration
	// FailurePenalty is the latency a failed attempt counts as, at least, in the
	// PeakEWMA score. If zero, 1s.
	FailurePenalty time.Duration
	// Logger receives discovery and health-check logs. If nil, slog.Default().
	Logger *slog.Logger
}

// HealthCause says why a backend's health changed.
type HealthCause uint8

const (
	// ActiveCheck: the active health check crossed its rise or fall threshold.
	ActiveCheck HealthCause = iota
	// Ejection: outlier detection ejected the backend.
	Ejection
	// EjectionEnd: the ejection time ran out and the backend is back.
	EjectionEnd
)

// String returns the cause's name.
func (c HealthCause) String() string {
	switch c {
	case ActiveCheck:
		return "active-check"
	case Ejection:
		return "ejection"
	case EjectionEnd:
		return "ejection-end"
	}
	return "unknown"
}

// HealthEvent describes one change of a backend's health.
type HealthEvent struct {
	// Backend is the backend whose health changed.
	Backend Backend
	// Cause says what changed.
	Cause HealthCause
	// Healthy is the backend's health by Cause after the change (false: down or ejected).
	Healthy bool
	// Available is whether Select may now choose the backend (healthy and not ejected).
	Available bool
	// Err is the failed check's error when an active check marks the backend down.
	Err error
	// Duration is how long an ejection lasts.
	Duration time.Duration
}

// Stats are a balancer's counters, for metrics.
type Stats struct {
	// Backends is the number of backends in the set.
	Backends int
	// Available is the number of backends Select may choose.
	Available int
	// Down is the number marked down by active health checks.
	Down int
	// Ejected is the number ejected by outlier detection.
	Ejected int
	// HealthChanges counts health events since the balancer was made.
	HealthChanges uint64
	// Ejections counts ejections since the balancer was made.
	Ejections uint64
	// Updates counts backend set replacements.
	Updates uint64
}

// picker selects from one snapshot; implementations are immutable apart from atomics.
type picker[T any] interface {
	pick(s *snapshot[T], key string, a *Attempts[T], now time.Duration) *Target[T]
}

// snapshot is an immutable backend set with the algorithm's tables.
type snapshot[T any] struct {
	targets []*Target[T]
	byAddr  map[string]*Target[T]
	picker  picker[T]
}

// LoadBalancer selects backends from a set that discovery and health checks keep up
// to date; each backend carries a value of type T (see Options.Attach) that a
// [Pick] hands back typed, so UpstreamPeer needs no type assertion. Its methods are safe for concurrent use. It is a background service by its
// method set (Name, Run).
type LoadBalancer[T any] struct {
	// immutable
	name           string
	algo           Algorithm
	discovery      Discovery
	health         *HealthCheck
	outlier        OutlierOptions
	attach         func(Backend) T
	onHealth       func(HealthEvent)
	observers      []observe.HealthObserver
	budget         *RetryBudget
	decay          time.Duration
	failurePenalty time.Duration
	log            *slog.Logger
	epoch          time.Time

	snap atomic.Pointer[snapshot[T]]

	mu      sync.Mutex   // serialises SetBackends
	ejected atomic.Int32 // backends ejected now

	healthChanges atomic.Uint64
	ejections     atomic.Uint64
	updates       atomic.Uint64
}

// New returns a LoadBalancer. It fails if an option or a backend is invalid.
func New[T any](opts Options[T]) (*LoadBalancer[T], error) {
	if opts.Algorithm > Maglev {
		return nil, fmt.Errorf("lb: Options.Algorithm: unknown algorithm %d", opts.Algorithm)
	}
	if opts.HealthCheck != nil {
		if err := opts.HealthCheck.validate(); err != nil {
			return nil, err
		}
	}
	o, err := opts.Outlier.withDefaults()
	if err != nil {
		return nil, err
	}
	for i, o := range opts.Observers {
		if o == nil {
			return nil, fmt.Errorf("lb: Options.Observers[%d] is nil", i)
		}
	}
	budget, err := newRetryBudget("Options.RetryBudget", opts.RetryBudget)
	if err != nil {
		return nil, err
	}
	l := &LoadBalancer[T]{
		name:           opts.Name,
		algo:           opts.Algorithm,
		discovery:      opts.Discovery,
		health:         opts.HealthCheck,
		outlier:        o,
		attach:         opts.Attach,
		onHealth:       opts.OnHealthChange,
		observers:      slices.Clone(opts.Observers),
		budget:         budget,
		decay:          opts.DecayTime,
		failurePenalty: opts.FailurePenalty,
		log:            opts.Logger,
		epoch:          time.Now(),
	}
	if l.name == "" {
		l.name = "lb"
	}
	if l.decay <= 0 {
		l.decay = 10 * time.Second
	}
	if l.failurePenalty <= 0 {
		l.failurePenalty = time.Second
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.snap.Store(&snapshot[T]{byAddr: map[string]*Target[T]{}, picker: emptyPicker[T]{}})
	if err := l.setBackends("Options.Backends", opts.Backends); err != nil {
		return nil, err
	}
	return l, nil
}

// now returns the monotonic time since the balancer was made.
func (l *LoadBalancer[T]) now() time.Duration { return time.Since(l.epoch) }

// RetryBudget returns the budget that caps the retries [Failover] asks for, for its
// counters.
func (l *LoadBalancer[T]) RetryBudget() *RetryBudget { return l.budget }

// Name returns the balancer's name as a background service.
func (l *LoadBalancer[T]) Name() string { return l.name }

// Algorithm returns the selection algorithm.
func (l *LoadBalancer[T]) Algorithm() Algorithm { return l.algo }

// Select chooses a backend for a request. key is what the hashing algorithms hash (a
// path, a header, a cookie, the client address); the others ignore it. a, if not nil,
// holds the backends this request already tried: Select skips them and records its
// choice. The caller releases the result with [Pick.Done]. Select takes no lock and
// allocates nothing.
func (l *LoadBalancer[T]) Select(key string, a *Attempts[T]) (Pick[T], error) {
	s := l.snap.Load()
	if len(s.targets) == 0 {
		return Pick[T]{}, ErrNoBackend
	}
	var now time.Duration
	if l.algo == PeakEWMA {
		now = l.now()
	}
	t := s.picker.pick(s, key, a, now)
	if t == nil {
		t = fallback(s, a)
		if t == nil {
			return Pick[T]{}, ErrNoBackend
		}
	}
	t.inflight.Add(1)
	a.add(t)
	return Pick[T]{t: t, start: now}, nil
}

// SelectBytes is Select with a key given as bytes; the key is not kept.
func (l *LoadBalancer[T]) SelectBytes(key []byte, a *Attempts[T]) (Pick[T], error) {
	return l.Select(unsafe.String(unsafe.SliceData(key), len(key)), a)
}

// fallback returns the first backend not tried yet, ignoring health (fail open), or nil.
func fallback[T any](s *snapshot[T], a *Attempts[T]) *Target[T] {
	for _, t := range s.targets {
		if !a.Tried(t) {
			return t
		}
	}
	return nil
}

// usable reports whether t may be chosen for the request that tried a.
func usable[T any](t *Target[T], a *Attempts[T]) bool {
	return t.state.Load() == 0 && !a.Tried(t)
}

// Targets returns the current backends, in the order they were given. The slice is
// shared: do not change it.
func (l *LoadBalancer[T]) Targets() []*Target[T] { return l.snap.Load().targets }

// Lookup returns the Target of the backend at addr, or nil.
func (l *LoadBalancer[T]) Lookup(addr string) *Target[T] { return l.snap.Load().byAddr[addr] }

// Stats returns the balancer's counters.
func (l *LoadBalancer[T]) Stats() Stats {
	s := l.snap.Load()
	st := Stats{
		Backends:      len(s.targets),
		HealthChanges: l.healthChanges.Load(),
		Ejections:     l.ejections.Load(),
		Updates:       l.updates.Load(),
	}
	for _, t := range s.targets {
		v := t.state.Load()
		if v == 0 {
			st.Available++
		}
		if v&stateDown != 0 {
			st.Down++
		}
		if v&stateEjected != 0 {
			st.Ejected++
		}
	}
	return st
}

// SetBackends replaces the backend set. Backends that stay (same Addr) keep their
// health, ejection and in-flight state; new ones start healthy. It fails, changing
// nothing, if a backend is invalid or two share an address.
func (l *LoadBalancer[T]) SetBackends(bs []Backend) error { return l.setBackends("backends", bs) }

// validateBackends checks a backend set; its errors name the bad backend as
// field[index], once.
func validateBackends(field string, bs []Backend) error {
	if len(bs) > maxBackends {
		return fmt.Errorf("lb: %s: %d backends, more than %d", field, len(bs), maxBackends)
	}
	seen := make(map[string]int, len(bs))
	for i, b := range bs {
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				err = addrError{ae} // its text repeats the address
			}
			return fmt.Errorf("lb: %s[%d]: address %q: %w", field, i, b.Addr, err)
		}
		if b.Weight < 0 || b.Weight > MaxWeight {
			return fmt.Errorf("lb: %s[%d]: Weight %d not in 0..%d", field, i, b.Weight, MaxWeight)
		}
		if j, dup := seen[b.Addr]; dup {
			return fmt.Errorf("lb: %s[%d]: address %q already at [%d]", field, i, b.Addr, j)
		}
		seen[b.Addr] = i
	}
	return nil
}

// addrError is a *net.AddrError whose text leaves out the address, which the message
// around it gives.
type addrError struct{ err *net.AddrError }

func (e addrError) Error() string { return e.err.Err }
func (e addrError) Unwrap() error { return e.err }

// setBackends is SetBackends with the name its errors give the set.
func (l *LoadBalancer[T]) setBackends(field string, bs []Backend) error {
	if err := validateBackends(field, bs); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.snap.Load()
	s := &snapshot[T]{targets: make([]*Target[T], 0, len(bs)), byAddr: make(map[string]*Target[T], len(bs))}
	for _, b := range bs {
		b.Meta = maps.Clone(b.Meta)
		t := old.byAddr[b.Addr]
		if t == nil || t.backend.weight() != b.weight() || !maps.Equal(t.backend.Meta, b.Meta) {
			nt := &Target[T]{backend: b, weight: int64(b.weight()), lb: l}
			if l.attach != nil {
				nt.value = l.attach(b)
			}
			if t != nil {
				l.inherit(nt, t)
			}
			t = nt
		}
		s.targets = append(s.targets, t)
		s.byAddr[b.Addr] = t
	}
	for addr, t := range old.byAddr {
		if nt := s.byAddr[addr]; nt != t {
			l.retire(t, nt)
		}
	}
	s.picker = l.buildPicker(s.targets)
	l.snap.Store(s)
	l.updates.Add(1)
	return nil
}

// maxBackends bounds the set; Maglev's table indexes backends with 16 bits.
const maxBackends = 1 << 15

func (l *LoadBalancer[T]) buildPicker(ts []*Target[T]) picker[T] {
	if len(ts) == 0 {
		return emptyPicker[T]{}
	}
	switch l.algo {
	case Random:
		return newRandomPicker(ts)
	case LeastConn:
		return leastConnPicker[T]{}
	case PeakEWMA:
		return ewmaPicker[T]{}
	case Ketama:
		return newKetamaPicker(ts)
	case Maglev:
		return newMaglevPicker(ts, maglevSize)
	}
	return newRoundRobinPicker(ts)
}

type emptyPicker[T any] struct{}

func (emptyPicker[T]) pick(*snapshot[T], string, *Attempts[T], time.Duration) *Target[T] { return nil }

// notify counts a health event and calls the callback.
func (l *LoadBalancer[T]) notify(ev HealthEvent) {
	l.healthChanges.Add(1)
	if l.onHealth != nil {
		l.onHealth(ev)
	}
	if len(l.observers) == 0 {
		return
	}
	h := observe.Health{
		Balancer: l.name, Backend: ev.Backend.Addr, Cause: ev.Cause.String(),
		Healthy: ev.Healthy, Available: ev.Available, Err: ev.Err, Time: time.Now(),
	}
	for _, o := range l.observers {
		o.HealthChange(h)
	}
}

// AppendBackends appends the state of each backend to dst, in the order of the set, and
// returns the extended slice: for metrics and status pages (it makes the balancer an
// observe.Balancer).
func (l *LoadBalancer[T]) AppendBackends(dst []observe.Backend) []observe.Backend {
	for _, t := range l.snap.Load().targets {
		v := t.state.Load()
		dst = append(dst, observe.Backend{
			Addr: t.backend.Addr, Weight: t.backend.weight(),
			Healthy: v&stateDown == 0, Ejected: v&stateEjected != 0, Available: v == 0,
			InFlight: t.inflight.Load(), Latency: t.Latency(),
		})
	}
	return dst
}

// Run runs the balancer's discovery and active health checks until ctx ends, then
// returns nil. With neither configured it just waits. It fails if discovery fails for
// good.
func (l *LoadBalancer[T]) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	if l.discovery != nil {
		wg.Go(func() {
			err := l.discovery.Watch(ctx, func(bs []Backend) {
				if err := l.SetBackends(bs); err != nil {
					l.log.Warn("lb: discovery gave an invalid backend set; keeping the last one", "lb", l.name, "err", err)
				}
			})
			if err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("lb %s: Discovery.Watch: %w", l.name, err)
				cancel()
			}
		})
	}
	if l.health != nil {
		wg.Go(func() { l.runHealthChecks(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
