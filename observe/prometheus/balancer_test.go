package prometheus_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
)

// fixedBalancer lists fixed backends.
type fixedBalancer struct {
	name string
	bs   []observe.Backend
}

func (b fixedBalancer) Name() string { return b.name }
func (b fixedBalancer) AppendBackends(dst []observe.Backend) []observe.Backend {
	return append(dst, b.bs...)
}

// Added balancers' backends are listed at each scrape; health changes are counted.
func TestBalancers(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := fixedBalancer{"api", []observe.Backend{
		{Addr: "10.0.0.1:80", Weight: 2, Healthy: true, Available: true, InFlight: 3, Latency: 1500 * time.Microsecond},
		{Addr: "10.0.0.2:80", Weight: 1, Healthy: true, Ejected: true},
		{Addr: "10.0.0.2:80", Weight: 1}, // listed twice: reported once
	}}
	if err := m.AddBalancer(api); err != nil {
		t.Fatal(err)
	}
	if err := m.AddBalancer(fixedBalancer{"web", []observe.Backend{{Addr: "10.0.1.1:80", Available: true}}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []observe.Balancer{fixedBalancer{name: "api"}, fixedBalancer{}, nil} {
		if err := m.AddBalancer(b); !errors.Is(err, prometheus.ErrBalancer) {
			t.Fatalf("AddBalancer(%v): %v", b, err)
		}
	}
	m.HealthChange(observe.Health{Balancer: "api", Backend: "10.0.0.2:80", Cause: "ejection"})
	m.HealthChange(observe.Health{Balancer: "api", Backend: "10.0.0.2:80", Cause: "ejection-end", Healthy: true})
	m.HealthChange(observe.Health{Balancer: "api", Backend: "10.0.0.2:80", Cause: "ejection"})

	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_backend_up{balancer=api,backend=10.0.0.1:80}":                                      1,
		"gotthard_backend_available{balancer=api,backend=10.0.0.1:80}":                               1,
		"gotthard_backend_ejected{balancer=api,backend=10.0.0.1:80}":                                 0,
		"gotthard_backend_in_flight_requests{balancer=api,backend=10.0.0.1:80}":                      3,
		"gotthard_backend_latency_ewma_seconds{balancer=api,backend=10.0.0.1:80}":                    0.0015,
		"gotthard_backend_weight{balancer=api,backend=10.0.0.1:80}":                                  2,
		"gotthard_backend_up{balancer=api,backend=10.0.0.2:80}":                                      1,
		"gotthard_backend_available{balancer=api,backend=10.0.0.2:80}":                               0,
		"gotthard_backend_ejected{balancer=api,backend=10.0.0.2:80}":                                 1,
		"gotthard_backend_available{balancer=web,backend=10.0.1.1:80}":                               1,
		"gotthard_backend_health_changes_total{balancer=api,backend=10.0.0.2:80,cause=ejection}":     2,
		"gotthard_backend_health_changes_total{balancer=api,backend=10.0.0.2:80,cause=ejection-end}": 1,
	})
	if n := f.count("gotthard_backend_up"); n != 3 {
		t.Fatalf("%d backends listed, want 3:\n%s", n, f.series("gotthard_backend_up"))
	}
	if !m.RemoveBalancer("web") || m.RemoveBalancer("web") {
		t.Fatal("RemoveBalancer")
	}
	if n := scrape(t, m).count("gotthard_backend_up"); n != 2 {
		t.Fatalf("%d backends listed after removing web, want 2", n)
	}
}
