package admin

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// request runs one request's events through s: it ended now, took d, got status, made
// the given attempts (the last one's connection reused or not).
func request(s *Stats, service string, d time.Duration, status int, err error, attempts int, reused bool) {
	end := time.Now()
	r := &observe.Request{Service: service, Start: end.Add(-d), Method: "GET", Target: "/"}
	s.RequestStart(r)
	for n := range attempts {
		a := &observe.Attempt{N: n, Peer: "10.0.0.1:80", Start: r.Start}
		s.AttemptStart(r, a)
		a.Reused, a.Connected = reused, r.Start
		s.UpstreamRequest(r, a, nil)
		a.End = end
		s.AttemptEnd(r, a)
	}
	r.End, r.Status, r.Err, r.Attempts = end, status, err, attempts
	r.BytesSent, r.BytesReceived = 100, 10
	s.RequestEnd(r)
}

func one(t *testing.T, s *Stats, name string) ServiceStats {
	t.Helper()
	for _, v := range s.Snapshot() {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no service %q in the snapshot", name)
	return ServiceStats{}
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*want
}

func TestStatsCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStats()
		time.Sleep(30 * time.Second)
		request(s, "gw", time.Millisecond, 200, nil, 1, false)
		request(s, "gw", time.Millisecond, 200, nil, 1, true)
		request(s, "gw", time.Millisecond, 204, nil, 1, true)
		request(s, "gw", time.Millisecond, 404, nil, 1, true)
		request(s, "gw", time.Millisecond, 502, errors.New("refused"), 3, false)
		request(s, "gw", time.Millisecond, 499, errors.New("client left"), 1, true)
		request(s, "gw", time.Millisecond, 0, errors.New("tunnel failed"), 0, false)
		request(s, "other", time.Millisecond, 200, nil, 1, false)

		// One request in flight, two connections open, one closed.
		open := &observe.Request{Service: "gw", Start: time.Now()}
		s.RequestStart(open)
		conns := make([]*observe.Conn, 3)
		for i := range conns {
			conns[i] = &observe.Conn{Service: "gw"}
			s.ConnOpen(conns[i])
		}
		s.ConnClose(conns[0])
		s.ConnTLS(&observe.Conn{Service: "gw", Err: errors.New("bad handshake")})
		s.UpstreamConn(&observe.Conn{Service: "gw", Upstream: true})
		s.UpstreamConn(&observe.Conn{Service: "gw", Upstream: true, Err: errors.New("refused")})

		got := one(t, s, "gw")
		want := ServiceStats{
			Name: "gw", Requests: 7, Errors: 2, Retries: 2,
			ByClass:  Classes{C2xx: 3, C4xx: 2, C5xx: 1, Other: 1},
			InFlight: 1, Connections: 2, ConnectionsTotal: 3, TLSFailures: 1,
			UpstreamConns: 1, UpstreamConnErrs: 1, Reused: 4, New: 4,
			BytesSent: 700, BytesReceived: 70,
		}
		// 499 has class 4.
		if got.Requests != want.Requests || got.Errors != want.Errors || got.Retries != want.Retries ||
			got.ByClass != want.ByClass || got.InFlight != want.InFlight ||
			got.Connections != want.Connections || got.ConnectionsTotal != want.ConnectionsTotal ||
			got.TLSFailures != want.TLSFailures || got.UpstreamConns != want.UpstreamConns ||
			got.UpstreamConnErrs != want.UpstreamConnErrs || got.Reused != want.Reused ||
			got.New != want.New || got.BytesSent != want.BytesSent || got.BytesReceived != want.BytesReceived {
			t.Errorf("counters:\n got %+v\nwant %+v", got, want)
		}
		if r := got.ReuseRatio(); r != 0.5 {
			t.Errorf("ReuseRatio = %v, want 0.5", r)
		}
		if names := []string{s.Snapshot()[0].Name, s.Snapshot()[1].Name}; !slices.Equal(names, []string{"gw", "other"}) {
			t.Errorf("services = %v, want sorted [gw other]", names)
		}
		if up := s.Uptime(); up != 30*time.Second {
			t.Errorf("Uptime = %v, want 30s", up)
		}
	})
}

func TestStatsRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStats()
		// Start on a whole second, then 70 s of 5 requests a second for the first 60 s
		// and 20 a second (one in 4 a 503) for the last 10.
		time.Sleep(time.Duration(1e9 - time.Now().UnixNano()%1e9))
		for sec := range 70 {
			n, bad := 5, 0
			if sec >= 60 {
				n, bad = 20, 5
			}
			for i := range n {
				status := 200
				if i < bad {
					status = 503
				}
				request(s, "gw", time.Millisecond, status, nil, 1, true)
			}
			time.Sleep(time.Second)
		}
		got := one(t, s, "gw")
		if got.RPS10s != 20 {
			t.Errorf("RPS10s = %v, want 20", got.RPS10s)
		}
		// The last 60 s: 50 s at 5/s and 10 s at 20/s.
		if want := (50*5 + 10*20) / 60.0; !near(got.RPS1m, want, 1e-9) {
			t.Errorf("RPS1m = %v, want %v", got.RPS1m, want)
		}
		if got.ErrorRate10s != 0.25 {
			t.Errorf("ErrorRate10s = %v, want 0.25", got.ErrorRate10s)
		}
		if want := 50.0 / 450; !near(got.ErrorRate1m, want, 1e-9) {
			t.Errorf("ErrorRate1m = %v, want %v", got.ErrorRate1m, want)
		}

		// A quiet minute later, the windows are empty but the totals stay.
		time.Sleep(61 * time.Second)
		got = one(t, s, "gw")
		if got.RPS10s != 0 || got.RPS1m != 0 || got.ErrorRate1m != 0 || got.LatencySamples != 0 || got.P99ms != 0 {
			t.Errorf("after a quiet minute: %+v, want empty windows", got)
		}
		if got.Requests != 60*5+10*20 {
			t.Errorf("Requests = %d, want 500", got.Requests)
		}
	})
}

func TestStatsRatesFirstSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStats()
		for range 4 {
			for range 10 {
				request(s, "gw", time.Millisecond, 200, nil, 1, true)
			}
			time.Sleep(time.Second)
		}
		// Four seconds in: 10/s, not 40/10.
		if got := one(t, s, "gw"); got.RPS10s != 10 || got.RPS1m != 10 {
			t.Errorf("RPS10s, RPS1m = %v, %v; want 10, 10", got.RPS10s, got.RPS1m)
		}
	})
}

func TestStatsPercentiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		dist func(r *rand.Rand) time.Duration
	}{
		{"uniform 1ms-1s", func(r *rand.Rand) time.Duration {
			return time.Millisecond + time.Duration(r.Int64N(int64(999*time.Millisecond)))
		}},
		{"exponential mean 5ms", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * 5e6) }},
		{"microseconds", func(r *rand.Rand) time.Duration { return time.Duration(1+r.IntN(50)) * time.Microsecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewStats()
				rng := rand.New(rand.NewPCG(1, 2))
				var all []time.Duration
				// 20 s of 500 requests a second.
				for range 20 {
					for range 500 {
						d := tc.dist(rng)
						all = append(all, d)
						request(s, "gw", d, 200, nil, 1, true)
					}
					time.Sleep(time.Second)
				}
				slices.Sort(all)
				got := one(t, s, "gw")
				if got.LatencySamples != uint64(len(all)) {
					t.Fatalf("LatencySamples = %d, want %d", got.LatencySamples, len(all))
				}
				for _, p := range []struct {
					q   float64
					got float64
				}{{0.5, got.P50ms}, {0.9, got.P90ms}, {0.99, got.P99ms}} {
					exact := float64(all[int(math.Ceil(p.q*float64(len(all))))-1]) / 1e6
					// Within the width of a bucket (1/8 of its lower bound), and 1 µs of
					// rounding at the bottom.
					if math.Abs(p.got-exact) > exact/8+0.001 {
						t.Errorf("p%v = %.4f ms, exact %.4f ms", p.q*100, p.got, exact)
					}
				}
			})
		})
	}
}

// A tunnel's life is not a latency.
func TestStatsTunnelNoLatency(t *testing.T) {
	s := NewStats()
	r := &observe.Request{Service: "ws", Upgrade: "websocket", Start: time.Now().Add(-time.Hour)}
	s.RequestStart(r)
	r.End, r.Status = time.Now(), 101
	s.RequestEnd(r)
	if got := one(t, s, "ws"); got.Requests != 1 || got.LatencySamples != 0 || got.ByClass.C1xx != 1 {
		t.Errorf("%+v: want 1 request, 1xx, no latency sample", got)
	}
}

func TestBuckets(t *testing.T) {
	prevHi := 0.0
	for i := range numBuckets - 1 {
		lo, hi := bucketBounds(i)
		if lo != prevHi || hi <= lo || (lo >= subBuckets && (hi-lo)/lo > 1.0/subBuckets+1e-12) {
			t.Fatalf("bucket %d: [%v, %v) after %v", i, lo, hi, prevHi)
		}
		prevHi = hi
		for _, us := range []uint64{uint64(lo), uint64(hi) - 1} {
			if got := bucketOf(us); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", us, got, i)
			}
		}
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last", got)
	}
	if lo, _ := bucketBounds(numBuckets - 1); lo != prevHi {
		t.Errorf("last bucket starts at %v, want %v", lo, prevHi)
	}
}

func TestStatsConcurrent(t *testing.T) {
	s := NewStats()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			svc := []string{"a", "b"}[g%2]
			for i := range 1000 {
				request(s, svc, time.Millisecond, 200, nil, 1, true)
				if i%100 == 0 {
					s.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	for _, v := range s.Snapshot() {
		if v.Requests != 4000 || v.InFlight != 0 {
			t.Errorf("%s: %d requests, %d in flight; want 4000, 0", v.Name, v.Requests, v.InFlight)
		}
	}
}

// events runs the events of one proxied request on reused values, as a proxy does.
func events(s *Stats, r *observe.Request, a *observe.Attempt, now time.Time) {
	r.Data, r.Start = nil, now
	s.RequestStart(r)
	*a = observe.Attempt{Peer: "10.0.0.1:80", Start: now, Reused: true, Connected: now}
	s.AttemptStart(r, a)
	s.UpstreamRequest(r, a, nil)
	a.End, a.Status = now, 200
	s.AttemptEnd(r, a)
	r.End, r.Status, r.Attempts = now.Add(1500*time.Microsecond), 200, 1
	r.BytesSent = 512
	s.RequestEnd(r)
}

func TestStatsNoAllocs(t *testing.T) {
	s := NewStats()
	r, a := &observe.Request{Service: "gw"}, &observe.Attempt{}
	now := time.Now()
	events(s, r, a, now) // adds the service
	if n := testing.AllocsPerRun(1000, func() { events(s, r, a, now) }); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

// BenchmarkStatsRequest is the cost of one request's events: RequestStart,
// AttemptStart, UpstreamRequest, AttemptEnd and RequestEnd.
func BenchmarkStatsRequest(b *testing.B) {
	s := NewStats()
	r, a := &observe.Request{Service: "gw"}, &observe.Attempt{}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		events(s, r, a, now)
	}
}

// BenchmarkStatsRequestParallel is the same from every P at once, on one service.
func BenchmarkStatsRequestParallel(b *testing.B) {
	s := NewStats()
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, a := &observe.Request{Service: "gw"}, &observe.Attempt{}
		for pb.Next() {
			events(s, r, a, now)
		}
	})
}

// BenchmarkSnapshot is the cost of reading one service's numbers for /status.json.
func BenchmarkSnapshot(b *testing.B) {
	s := NewStats()
	r, a := &observe.Request{Service: "gw"}, &observe.Attempt{}
	events(s, r, a, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		s.Snapshot()
	}
}

func TestStatsHealthEvents(t *testing.T) {
	s := NewStats()
	if got := s.HealthEvents(); len(got) != 0 {
		t.Fatalf("%d events at first", len(got))
	}
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	for i := range maxHealthEvents + 5 {
		h := observe.Health{Balancer: "lb", Backend: "b" + strconv.Itoa(i), Cause: "active-check", Time: t0.Add(time.Duration(i) * time.Second)}
		if i%2 == 0 {
			h.Err = errors.New("refused")
		}
		s.HealthChange(h)
	}
	got := s.HealthEvents()
	if len(got) != maxHealthEvents {
		t.Fatalf("%d events, want %d", len(got), maxHealthEvents)
	}
	last := maxHealthEvents + 4
	if got[0].Backend != "b"+strconv.Itoa(last) || got[len(got)-1].Backend != "b5" || got[0].Error != "refused" || got[1].Error != "" {
		t.Errorf("newest %+v, oldest %+v", got[0], got[len(got)-1])
	}
}

// TestStatsAttemptWithoutConnection: an attempt that got no connection (refused, say)
// counts neither as reused nor as new.
func TestStatsAttemptWithoutConnection(t *testing.T) {
	s := NewStats()
	now := time.Now()
	r := &observe.Request{Service: "gw", Start: now}
	s.RequestStart(r)
	refused := &observe.Attempt{Peer: "10.0.0.1:80", Start: now, End: now, Err: errors.New("refused")}
	s.AttemptStart(r, refused)
	s.AttemptEnd(r, refused)
	good := &observe.Attempt{N: 1, Peer: "10.0.0.2:80", Start: now, Connected: now, End: now, Status: 200}
	s.AttemptStart(r, good)
	s.AttemptEnd(r, good)
	r.End, r.Status, r.Attempts = now, 200, 2
	s.RequestEnd(r)
	if v := one(t, s, "gw"); v.Reused != 0 || v.New != 1 || v.Retries != 1 {
		t.Fatalf("reused %d new %d retries %d; want 0, 1, 1", v.Reused, v.New, v.Retries)
	}
}
