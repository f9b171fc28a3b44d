package admin

import (
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// maxHealthEvents is how many of the latest health changes a Stats keeps.
const maxHealthEvents = 32

// HealthEvent is a backend's health change as /status.json lists it: the latest
// changes, newest first, that the balancers given the Stats (lb.Options.Observers)
// reported. Each field is the JSON field its tag names.
type HealthEvent struct {
	Time      time.Time `json:"time"`
	Balancer  string    `json:"balancer"`
	Backend   string    `json:"backend"`
	Cause     string    `json:"cause"`
	Healthy   bool      `json:"healthy"`
	Available bool      `json:"available"`
	Error     string    `json:"error,omitempty"`
}

var _ observe.HealthObserver = (*Stats)(nil)

// HealthChange keeps the change among the latest 32, for the status page. Give the
// Stats to a balancer's lb.Options.Observers for it to be called.
func (s *Stats) HealthChange(h observe.Health) {
	ev := HealthEvent{
		Time: h.Time.UTC(), Balancer: h.Balancer, Backend: h.Backend, Cause: h.Cause,
		Healthy: h.Healthy, Available: h.Available,
	}
	if ev.Time.IsZero() {
		ev.Time = s.now().UTC()
	}
	if h.Err != nil {
		ev.Error = h.Err.Error()
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.health[s.healthNext%maxHealthEvents] = ev
	s.healthNext++
}

// HealthEvents returns the latest health changes, newest first.
func (s *Stats) HealthEvents() []HealthEvent {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	n := min(s.healthNext, maxHealthEvents)
	out := make([]HealthEvent, 0, n)
	for i := range n {
		out = append(out, s.health[(s.healthNext-1-i)%maxHealthEvents])
	}
	return out
}
