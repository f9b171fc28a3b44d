package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

// Resolver looks up DNS records. *net.Resolver satisfies it; tests and programs with
// their own DNS client (one that sees TTLs, say) may pass another.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// TTLResolver is a Resolver that also reports the answer's TTL. When DNS.Resolver is
// one, DNS re-resolves when the TTL runs out (no sooner than MinInterval).
type TTLResolver interface {
	Resolver
	// TTL returns the TTL of the last answer for name, or 0 if unknown.
	TTL(name string) time.Duration
}

// DNS finds backends by resolving a name: its A and AAAA records with a fixed port, or
// its SRV records (target, port, weight). It resolves again every Interval, or when the
// TTL runs out if the resolver reports TTLs, never more often than MinInterval. On a
// lookup error or an empty answer the last good set stays in use.
//
// The default resolver, a [Client], reports TTLs; net.Resolver does not, so with one
// Interval applies.
//
// Its fields must not change once Watch runs.
type DNS struct {
	// Host is the name to resolve for A/AAAA records. Ignored if SRV is set.
	Host string
	// Port is the port of the backends found by Host.
	Port int
	// SRV, if not empty, is the name whose SRV records give the backends (for example
	// "_http._tcp.api.internal"). The SRV weight becomes the backend's weight (0 → 1);
	// only the records of the lowest priority are used. Targets are resolved to
	// addresses, so each address of a target is a backend.
	SRV string
	// Resolver does the lookups. If nil, a [Client] (which reports TTLs) asking the
	// servers of /etc/resolv.conf.
	Resolver Resolver
	// Interval is the time between lookups when no TTL is known. If zero, 30s.
	Interval time.Duration
	// MinInterval is the floor of the time between lookups. If zero, 1s.
	MinInterval time.Duration
	// Timeout bounds one lookup. If zero, 5s.
	Timeout time.Duration
	// Logger receives lookup errors. If nil, slog.Default().
	Logger *slog.Logger

	defaultOnce sync.Once
	client      *Client
}

// ErrNoRecords is returned by Lookup when a name has no usable records.
var ErrNoRecords = errors.New("discovery: no records")

// Watch resolves the name and reports the backends, then again each time the answer
// changes, until ctx ends. A failure of the first lookup is logged and retried at
// MinInterval.
func (d *DNS) Watch(ctx context.Context, update func([]lb.Backend)) error {
	if d.Host == "" && d.SRV == "" {
		return errors.New("discovery: DNS: Host or SRV must be set")
	}
	interval, floor := d.Interval, d.MinInterval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if floor <= 0 {
		floor = time.Second
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	var last []lb.Backend
	for {
		bs, err := d.Lookup(ctx)
		wait := interval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("discovery: DNS lookup failed; keeping the last answer", "name", d.name(), "err", err)
			if last == nil {
				wait = floor
			}
		case !equalBackends(bs, last):
			last = bs
			update(slices.Clone(bs))
		}
		if r, ok := d.resolver().(TTLResolver); ok && err == nil {
			if ttl := r.TTL(d.name()); ttl > 0 {
				wait = ttl
			}
		}
		wait = max(wait, floor)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (d *DNS) name() string {
	if d.SRV != "" {
		return d.SRV
	}
	return d.Host
}

func (d *DNS) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	d.defaultOnce.Do(func() { d.client = &Client{} })
	return d.client
}

// Lookup resolves the name once and returns the backends, sorted by address.
func (d *DNS) Lookup(ctx context.Context) ([]lb.Backend, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := d.resolver()
	var bs []lb.Backend
	if d.SRV == "" {
		ips, err := r.LookupIPAddr(ctx, d.Host)
		if err != nil {
			return nil, fmt.Errorf("discovery: %s: %w", d.Host, err)
		}
		for _, ip := range ips {
			bs = append(bs, lb.Backend{Addr: net.JoinHostPort(ip.IP.String(), strconv.Itoa(d.Port))})
		}
	} else {
		_, srvs, err := r.LookupSRV(ctx, "", "", d.SRV)
		if err != nil {
			return nil, fmt.Errorf("discovery: %s: %w", d.SRV, err)
		}
		if len(srvs) > 0 {
			lowest := srvs[0].Priority
			for _, s := range srvs {
				lowest = min(lowest, s.Priority)
			}
			for _, s := range srvs {
				if s.Priority != lowest {
					continue
				}
				ips, err := r.LookupIPAddr(ctx, s.Target)
				if err != nil {
					return nil, fmt.Errorf("discovery: %s: target %s: %w", d.SRV, s.Target, err)
				}
				for _, ip := range ips {
					bs = append(bs, lb.Backend{
						Addr:   net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(s.Port))),
						Weight: min(max(int(s.Weight), 1), lb.MaxWeight),
					})
				}
			}
		}
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("%w for %s", ErrNoRecords, d.name())
	}
	slices.SortFunc(bs, func(a, b lb.Backend) int {
		if a.Addr < b.Addr {
			return -1
		} else if a.Addr > b.Addr {
			return 1
		}
		return 0
	})
	bs = slices.CompactFunc(bs, func(a, b lb.Backend) bool { return a.Addr == b.Addr })
	return bs, nil
}

func equalBackends(a, b []lb.Backend) bool {
	return slices.EqualFunc(a, b, func(x, y lb.Backend) bool { return x.Addr == y.Addr && x.Weight == y.Weight })
}
