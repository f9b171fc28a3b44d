package admin_test

import (
	"crypto/tls"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
)

// The status page in a real browser, fed by requests run through Stats by hand.
func TestStatusPageHandFed(t *testing.T) {
	stats := admin.NewStats()
	cert := selfSigned(t, "gw.example", 60, "gw.example")
	bal := &balancer{name: "origins", backends: []observe.Backend{
		{Addr: "127.0.0.1:8001", Weight: 1, Healthy: true, Available: true, InFlight: 1, Latency: 2 * time.Millisecond},
		{Addr: "127.0.0.1:8002", Weight: 1, Healthy: false},
	}}
	stats.HealthChange(observe.Health{Balancer: "origins", Backend: "127.0.0.1:8002", Cause: "active-check",
		Err: errors.New("connection refused"), Time: time.Now()})
	_, base := serve(t, admin.Options{
		Token:        "s3cret",
		Stats:        stats,
		Balancers:    []observe.Balancer{bal},
		Certificates: []admin.CertificateSource{{Name: "gw-tls", Certificates: func() []*tls.Certificate { return []*tls.Certificate{cert} }}},
		Listeners:    func() map[string][]string { return map[string][]string{"gateway": {"127.0.0.1:6188"}} },
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond) // pacing, not waiting
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			status := 200
			if i%50 == 49 {
				status = 502
			}
			feed(stats, "gateway", 1, status)
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	checkStatusPage(t, statusPageCheck{
		base: base, token: "s3cret", service: "gateway", listener: "127.0.0.1:6188",
		backends:   map[string]string{"origins/127.0.0.1:8001": "healthy", "origins/127.0.0.1:8002": "down"},
		certSource: "gw-tls", healthEvent: "127.0.0.1:8002",
	})
}
