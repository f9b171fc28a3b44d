package lb_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

func backends(n int, weights ...int) []lb.Backend {
	bs := make([]lb.Backend, n)
	for i := range bs {
		bs[i] = lb.Backend{Addr: "10.0.0." + strconv.Itoa(i+1) + ":80"}
		if i < len(weights) {
			bs[i].Weight = weights[i]
		}
	}
	return bs
}

func newLB(t testing.TB, algo lb.Algorithm, bs []lb.Backend) *lb.LoadBalancer[string] {
	t.Helper()
	l, err := lb.New(lb.Options[string]{Algorithm: algo, Backends: bs})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func pickAddr(t testing.TB, l *lb.LoadBalancer[string], key string, a *lb.Attempts[string]) string {
	t.Helper()
	p, err := l.Select(key, a)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Done(lb.Success)
	return p.Addr()
}

var allAlgorithms = []lb.Algorithm{lb.RoundRobin, lb.Random, lb.LeastConn, lb.PeakEWMA, lb.Ketama, lb.Maglev}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range allAlgorithms {
		got, err := lb.ParseAlgorithm(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := lb.ParseAlgorithm("fastest"); err == nil {
		t.Error("ParseAlgorithm accepted an unknown name")
	}
}

// TestNewRejects: each validation error names the bad field once.
func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts lb.Options[string]
		want string
	}{
		{"no port", lb.Options[string]{Backends: []lb.Backend{{Addr: "10.0.0.1:80"}, {Addr: "x"}}},
			`lb: Options.Backends[1]: address "x": missing port in address`},
		{"duplicate", lb.Options[string]{Backends: []lb.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.1:80"}}},
			`lb: Options.Backends[2]: address "10.0.0.1:80" already at [0]`},
		{"weight", lb.Options[string]{Backends: []lb.Backend{{Addr: "10.0.0.1:80", Weight: lb.MaxWeight + 1}}},
			`lb: Options.Backends[0]: Weight 10001 not in 0..10000`},
		{"algorithm", lb.Options[string]{Algorithm: 99}, "lb: Options.Algorithm: unknown algorithm 99"},
		{"outlier", lb.Options[string]{Outlier: lb.OutlierOptions{MaxEjectedPercent: 101}},
			"lb: Options.Outlier.MaxEjectedPercent: 101 not in 0..100"},
		{"ejection", lb.Options[string]{Outlier: lb.OutlierOptions{BaseEjection: -time.Second}},
			"lb: Options.Outlier.BaseEjection: -1s is negative"},
		{"health path", lb.Options[string]{HealthCheck: &lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "x"}}},
			`lb: Options.HealthCheck.HTTP.Path: "x" does not start with /`},
		{"health fall", lb.Options[string]{HealthCheck: &lb.HealthCheck{Fall: -1}},
			"lb: Options.HealthCheck.Fall: -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lb.New(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant   %s", err, tt.want)
			}
		})
	}
	// The address error still wraps the *net.AddrError.
	_, err := lb.New(lb.Options[string]{Backends: []lb.Backend{{Addr: "x"}}})
	if ae := (*net.AddrError)(nil); !errors.As(err, &ae) {
		t.Fatalf("err = %v, does not wrap a *net.AddrError", err)
	}
}

// TestSetBackendsRejects: SetBackends's errors name the set once and change nothing.
func TestSetBackendsRejects(t *testing.T) {
	l := newLB(t, lb.RoundRobin, backends(2))
	err := l.SetBackends([]lb.Backend{{Addr: "10.0.0.9:80"}, {Addr: "10.0.0.9:80"}})
	if want := `lb: backends[1]: address "10.0.0.9:80" already at [0]`; err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant   %s", err, want)
	}
	if n := len(l.Targets()); n != 2 {
		t.Fatalf("%d backends after a failed SetBackends, want 2", n)
	}
	if _, err := lb.NewRetryBudget(lb.RetryBudgetOptions{Window: -time.Second}); err == nil || err.Error() != "lb: RetryBudgetOptions.Window: -1s is negative" {
		t.Fatalf("NewRetryBudget: err = %v", err)
	}
}

// TestRoundRobinSmooth checks nginx's documented sequence for weights 5, 1, 1:
// a a b a c a a.
func TestRoundRobinSmooth(t *testing.T) {
	l := newLB(t, lb.RoundRobin, []lb.Backend{{Addr: "a:1", Weight: 5}, {Addr: "b:1", Weight: 1}, {Addr: "c:1", Weight: 1}})
	var got []string
	for range 14 {
		got = append(got, strings.TrimSuffix(pickAddr(t, l, "", nil), ":1"))
	}
	if want := "a a b a c a a a a b a c a a"; strings.Join(got, " ") != want {
		t.Fatalf("sequence %v, want %s", got, want)
	}
}

func TestWeightedShares(t *testing.T) {
	bs := backends(3, 1, 2, 5)
	for _, algo := range []lb.Algorithm{lb.RoundRobin, lb.Random, lb.Ketama, lb.Maglev} {
		t.Run(algo.String(), func(t *testing.T) {
			l := newLB(t, algo, bs)
			count := map[string]int{}
			const n = 40000
			for i := range n {
				count[pickAddr(t, l, "key-"+strconv.Itoa(i), nil)]++
			}
			tol := 0.03
			if algo == lb.Ketama {
				tol = 0.08 // 1,280 points spread less evenly than a table
			}
			for i, b := range bs {
				want := float64(b.Weight) / 8
				got := float64(count[b.Addr]) / n
				if math.Abs(got-want) > tol {
					t.Errorf("backend %d: share %.3f, want %.3f", i, got, want)
				}
			}
		})
	}
}

func TestLeastConn(t *testing.T) {
	l := newLB(t, lb.LeastConn, backends(3, 1, 1, 2))
	// Hold picks: the third backend, with twice the weight, should carry twice as many.
	var held []lb.Pick[string]
	for range 40 {
		p, err := l.Select("", nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	for i, tg := range l.Targets() {
		want := int64(10 * tg.Backend().Weight)
		if want == 0 {
			want = 10
		}
		if got := tg.InFlight(); got != want {
			t.Errorf("backend %d: %d in flight, want %d", i, got, want)
		}
	}
	for i := range held {
		held[i].Done(lb.Success)
		held[i].Done(lb.Success) // a second Done does nothing
	}
	for _, tg := range l.Targets() {
		if tg.InFlight() != 0 {
			t.Errorf("%s: %d in flight after Done", tg.Addr(), tg.InFlight())
		}
	}
}

// TestSkipsUnavailable ejects one backend and checks that no algorithm picks it, and
// that the hashing ones move only its keys.
func TestSkipsUnavailable(t *testing.T) {
	for _, algo := range allAlgorithms {
		t.Run(algo.String(), func(t *testing.T) {
			l, err := lb.New(lb.Options[string]{Algorithm: algo, Backends: backends(5),
				Outlier: lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: 1 << 40}})
			if err != nil {
				t.Fatal(err)
			}
			before := map[string]string{}
			for i := range 2000 {
				k := strconv.Itoa(i)
				before[k] = pickAddr(t, l, k, nil)
			}
			down := l.Targets()[2]
			// One connect failure ejects it (ConsecutiveFailures 1). Attempts makes each
			// pick skip the backends picked before, so down comes within five picks
			// whatever the algorithm prefers. (Keys map to one backend with the hashing
			// algorithms: those are driven below.)
			if !algo.Hashed() {
				var a lb.Attempts[string]
				for range 5 {
					p, _ := l.Select("x", &a)
					if p.Target() == down {
						p.Done(lb.ConnectFailure)
						break
					}
					p.Done(lb.Canceled)
				}
			}
			if algo.Hashed() {
				for !down.Ejected() {
					for i := range 100 {
						p, _ := l.Select(strconv.Itoa(i), nil)
						o := lb.Canceled
						if p.Target() == down {
							o = lb.ConnectFailure
						}
						p.Done(o)
					}
				}
			}
			if !down.Ejected() || down.Available() {
				t.Fatal("backend not ejected")
			}
			moved := 0
			for i := range 2000 {
				k := strconv.Itoa(i)
				got := pickAddr(t, l, k, nil)
				if got == down.Addr() {
					t.Fatalf("picked the ejected backend for key %s", k)
				}
				if got != before[k] {
					moved++
					if algo.Hashed() && before[k] != down.Addr() {
						t.Fatalf("key %s moved from a healthy backend %s to %s", k, before[k], got)
					}
				}
			}
			if st := l.Stats(); st.Ejected != 1 || st.Available != 4 || st.Ejections != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestAttemptsSkipTried(t *testing.T) {
	for _, algo := range allAlgorithms {
		t.Run(algo.String(), func(t *testing.T) {
			l := newLB(t, algo, backends(4))
			var a lb.Attempts[string]
			seen := map[string]bool{}
			for range 4 {
				addr := pickAddr(t, l, "same-key", &a)
				if seen[addr] {
					t.Fatalf("picked %s twice for one request", addr)
				}
				seen[addr] = true
			}
			if a.Len() != 4 {
				t.Fatalf("Len %d", a.Len())
			}
			if _, err := l.Select("same-key", &a); !errors.Is(err, lb.ErrNoBackend) {
				t.Fatalf("fifth pick: err %v, want ErrNoBackend", err)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	l := newLB(t, lb.RoundRobin, nil)
	if _, err := l.Select("", nil); !errors.Is(err, lb.ErrNoBackend) {
		t.Fatalf("err %v", err)
	}
}

// TestFailOpen: when every backend is ejected or down, Select still returns one.
func TestFailOpen(t *testing.T) {
	l, err := lb.New(lb.Options[string]{Backends: backends(2), Outlier: lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: 1 << 40, MaxEjectedPercent: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range l.Targets() {
		for !tg.Ejected() {
			p, _ := l.Select("", nil)
			p.Done(lb.ServerError)
		}
	}
	if pickAddr(t, l, "", nil) == "" {
		t.Fatal("no backend")
	}
}

func TestMaxEjectedPercent(t *testing.T) {
	l, err := lb.New(lb.Options[string]{Backends: backends(4), Outlier: lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		p, _ := l.Select("", nil)
		p.Done(lb.ConnectFailure)
	}
	if st := l.Stats(); st.Ejected != 2 {
		t.Fatalf("%d ejected, want 2 (50%% of 4)", st.Ejected)
	}
}

// TestSetBackendsKeepsState: a backend that stays keeps its ejection and counters.
func TestSetBackendsKeepsState(t *testing.T) {
	var events []lb.HealthEvent
	l, err := lb.New(lb.Options[string]{Backends: backends(3), Outlier: lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: 1 << 40},
		Attach:         func(b lb.Backend) string { return "peer " + b.Addr },
		OnHealthChange: func(ev lb.HealthEvent) { events = append(events, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Targets()[0]
	p, _ := l.Select("", nil)
	if p.Target() != first || p.Value() != "peer "+first.Addr() {
		t.Fatalf("pick %s value %v", p.Addr(), p.Value())
	}
	p.Done(lb.ConnectFailure)
	if !first.Ejected() || len(events) != 1 || events[0].Cause != lb.Ejection {
		t.Fatalf("ejected %v events %+v", first.Ejected(), events)
	}
	bs := backends(4)
	if err := l.SetBackends(bs); err != nil {
		t.Fatal(err)
	}
	if l.Lookup(first.Addr()) != first || !first.Ejected() {
		t.Fatal("the staying backend lost its state")
	}
	bs[0].Weight = 3
	if err := l.SetBackends(bs); err != nil {
		t.Fatal(err)
	}
	nt := l.Lookup(first.Addr())
	if nt == first || !nt.Ejected() || nt.Backend().Weight != 3 {
		t.Fatalf("reweighted backend: same %v ejected %v", nt == first, nt.Ejected())
	}
	if err := l.SetBackends(bs[1:]); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Ejected != 0 || st.Backends != 3 || st.Updates != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOutcomeOf: timeouts, however wrapped, are Timeout; other errors Failure.
func TestOutcomeOf(t *testing.T) {
	var netTimeout net.Error = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name   string
		status int
		err    error
		want   lb.Outcome
	}{
		{"ok", 200, nil, lb.Success},
		{"404", 404, nil, lb.Success},
		{"5xx", 503, nil, lb.ServerError},
		{"5xx with error", 502, errors.New("x"), lb.ServerError},
		{"error", 0, errors.New("connection reset"), lb.Failure},
		{"nothing", 0, nil, lb.Canceled},
		{"net timeout", 0, netTimeout, lb.Timeout},
		{"wrapped deadline", 0, fmt.Errorf("upstream: %w", os.ErrDeadlineExceeded), lb.Timeout},
		{"context deadline", 0, fmt.Errorf("total: %w", context.DeadlineExceeded), lb.Timeout},
		{"504 with timeout", 504, netTimeout, lb.ServerError},
		{"200 with timeout", 200, netTimeout, lb.Success},              // the backend answered: a slow client's timeout
		{"client gone", 499, errors.New("client closed"), lb.Canceled}, // the client left before the answer
		{"client gone, no error", 499, nil, lb.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lb.OutcomeOf(tt.status, tt.err); got != tt.want {
				t.Fatalf("OutcomeOf(%d, %v) = %v, want %v", tt.status, tt.err, got, tt.want)
			}
		})
	}
}

// TestTimeoutCountsForEjection: Done(Timeout) ejects like a connect failure, while
// Done(Failure) does not.
func TestTimeoutCountsForEjection(t *testing.T) {
	for _, tt := range []struct {
		o     lb.Outcome
		eject bool
	}{{lb.Timeout, true}, {lb.ConnectFailure, true}, {lb.ServerError, true}, {lb.Failure, false}, {lb.Canceled, false}} {
		t.Run(tt.o.String(), func(t *testing.T) {
			l, err := lb.New(lb.Options[string]{Backends: backends(2), Outlier: lb.OutlierOptions{ConsecutiveFailures: 2, BaseEjection: 1 << 40}})
			if err != nil {
				t.Fatal(err)
			}
			tg := l.Targets()[0]
			for range 2 {
				var a lb.Attempts[string]
				for {
					p, _ := l.Select("", &a)
					if p.Target() == tg {
						p.Done(tt.o)
						break
					}
					p.Done(lb.Canceled)
				}
			}
			if tg.Ejected() != tt.eject {
				t.Fatalf("ejected %v after two %v, want %v", tg.Ejected(), tt.o, tt.eject)
			}
		})
	}
}
