package prometheus

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gotthard-proxy/gotthard/observe"
	prom "github.com/prometheus/client_golang/prometheus"
)

// balancerCollector lists the backends of the balancers added to it at each scrape.
type balancerCollector struct {
	up, available, ejected, inFlight, latency, weight *prom.Desc

	mu        sync.Mutex
	balancers []observe.Balancer // by name, unique
}

func newBalancerCollector(ns string) *balancerCollector {
	labels := []string{"balancer", "backend"}
	desc := func(name, help string) *prom.Desc {
		return prom.NewDesc(prom.BuildFQName(ns, "backend", name), help, labels, nil)
	}
	return &balancerCollector{
		up:        desc("up", "1 if the backend is healthy by its active health checks, else 0."),
		available: desc("available", "1 if the balancer may choose the backend, else 0 (down, or ejected)."),
		ejected:   desc("ejected", "1 while outlier detection keeps the backend out, else 0."),
		inFlight:  desc("in_flight_requests", "Requests the backend has in flight through the balancer."),
		latency:   desc("latency_ewma_seconds", "The backend's decayed EWMA latency (0 before any sample)."),
		weight:    desc("weight", "The backend's weight in the balancer's selection."),
	}
}

// add adds b, refusing a name that is empty or taken.
func (c *balancerCollector) add(b observe.Balancer) error {
	name := b.Name()
	if name == "" {
		return fmt.Errorf("%w: its name is empty", ErrBalancer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.balancers {
		if x.Name() == name {
			return fmt.Errorf("%w: a balancer named %q was added already", ErrBalancer, name)
		}
	}
	c.balancers = append(slices.Clip(c.balancers), b)
	return nil
}

// remove removes the balancer named name.
func (c *balancerCollector) remove(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.balancers {
		if x.Name() == name {
			c.balancers = slices.Delete(slices.Clone(c.balancers), i, i+1)
			return true
		}
	}
	return false
}

// Describe sends the descriptors of the backend metrics.
func (c *balancerCollector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{c.up, c.available, c.ejected, c.inFlight, c.latency, c.weight} {
		ch <- d
	}
}

// Collect lists each balancer's backends. A backend address listed twice by one
// balancer is reported once (its first listing), as a scrape refuses duplicates.
func (c *balancerCollector) Collect(ch chan<- prom.Metric) {
	c.mu.Lock()
	bs := c.balancers // never changed in place: add and remove make a new slice
	c.mu.Unlock()
	var buf []observe.Backend
	seen := map[string]bool{}
	for _, b := range bs {
		name := b.Name()
		buf = b.AppendBackends(buf[:0])
		clear(seen)
		for _, be := range buf {
			if seen[be.Addr] {
				continue
			}
			seen[be.Addr] = true
			g := func(d *prom.Desc, v float64) {
				ch <- prom.MustNewConstMetric(d, prom.GaugeValue, v, name, be.Addr)
			}
			g(c.up, b2f(be.Healthy))
			g(c.available, b2f(be.Available))
			g(c.ejected, b2f(be.Ejected))
			g(c.inFlight, float64(be.InFlight))
			g(c.latency, be.Latency.Seconds())
			g(c.weight, float64(be.Weight))
		}
	}
}

// b2f returns 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
