package lb_test

import (
	"sync"
	"testing"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/observe"
)

// healthLog is an observe.HealthObserver that keeps what it sees.
type healthLog struct {
	mu sync.Mutex
	hs []observe.Health
}

func (h *healthLog) HealthChange(x observe.Health) {
	h.mu.Lock()
	h.hs = append(h.hs, x)
	h.mu.Unlock()
}

// TestObservers: an ejection reaches the balancer's observers as an observe.Health, and
// AppendBackends lists each backend's state as the Targets report it.
func TestObservers(t *testing.T) {
	obs := &healthLog{}
	bs := backends(3)
	bs[1].Weight = 4
	l, err := lb.New(lb.Options[string]{Name: "api", Backends: bs,
		Outlier:   lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: 1 << 40},
		Observers: []observe.HealthObserver{obs}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := l.Select("", nil)
	held, _ := l.Select("", nil) // in flight while listed
	ejected := p.Addr()
	p.Done(lb.ConnectFailure)
	if len(obs.hs) != 1 {
		t.Fatalf("observer saw %+v, want one change", obs.hs)
	}
	if h := obs.hs[0]; h.Balancer != "api" || h.Backend != ejected || h.Cause != "ejection" || h.Healthy ||
		h.Available || h.Time.IsZero() {
		t.Fatalf("health event %+v", h)
	}
	got := l.AppendBackends(nil)
	if len(got) != 3 {
		t.Fatalf("%d backends listed, want 3", len(got))
	}
	for i, b := range got {
		tg := l.Targets()[i]
		if b.Addr != tg.Addr() || b.Ejected != tg.Ejected() || b.Available != tg.Available() ||
			b.Healthy != tg.Healthy() || b.InFlight != tg.InFlight() || b.Weight != max(bs[i].Weight, 1) {
			t.Fatalf("backend %d listed as %+v; target %s ejected %v in flight %d", i, b, tg.Addr(), tg.Ejected(), tg.InFlight())
		}
	}
	if l.Lookup(held.Addr()).InFlight() != 1 {
		t.Fatal("the held pick is not in flight")
	}
	held.Done(lb.Success)
	var _ observe.Balancer = l
}

// TestObserversNil: a nil observer is refused by New, named.
func TestObserversNil(t *testing.T) {
	_, err := lb.New(lb.Options[string]{Backends: backends(1), Observers: []observe.HealthObserver{nil}})
	if err == nil || err.Error() != "lb: Options.Observers[0] is nil" {
		t.Fatalf("New: %v", err)
	}
}
