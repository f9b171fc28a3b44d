package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gotthard-proxy/gotthard/limit"
)

// acquireScript takes a lease in a key's sorted set of leases (member: the lease's id,
// score: when it expires, in milliseconds of Redis's clock), after dropping the expired
// ones, if fewer than the limit are left. The set expires with its last lease.
//
// KEYS[1]: the set. ARGV[1]: the limit. ARGV[2]: the lease's length in milliseconds.
// ARGV[3]: the lease's id. Returns 1 when taken, 0 when the key is at its limit.
var acquireScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// renewScript extends the leases still held, each KEYS[i] with the id ARGV[i+1], by
// ARGV[1] milliseconds from now. A lease that already expired is not taken again.
var renewScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + lease, ARGV[i + 1]) == 1 then
    redis.call('PEXPIRE', key, lease)
  end
end
return 0
`)

// InFlightOptions configures an [InFlight].
type InFlightOptions struct {
	// Store is how to reach Redis and what to do when it cannot be reached.
	Store StoreOptions
	// Limit is how many requests of one key may run at once across the fleet. It must
	// be positive.
	Limit int
	// Lease is how long a slot stays taken after its process last renewed it: the
	// process renews its leases every Lease/3 while their requests run, so a slot of a
	// process that died is free again within Lease. If zero, 30s; at least 1s.
	Lease time.Duration
	// RetryAfter is the hint a refused request gets. If zero, 1s.
	RetryAfter time.Duration
	// MaxKeys bounds the keys of the local fallback ([limit.InFlightOptions.MaxKeys]).
	// If zero, 65536.
	MaxKeys int
}

// InFlight limits each key's requests running at once across every process that shares
// its Redis and Prefix. Each running request holds a lease in a sorted set per key,
// taken by one Lua script (EVALSHA, atomic) and given back when the request ends; the
// process renews its leases while their requests run, so a crashed process's slots
// come back when its leases expire, and the sets expire with their last lease.
//
// When Redis fails or takes longer than Timeout, InFlight decides by its Fallback (a
// local [limit.InFlight] of the same settings by default) and leaves Redis alone for
// RetryInterval before one request tries it again. A slot taken from the fallback is
// given back to it. A slot Redis granted in a call that timed out on the way back is
// unknown to the process: it is neither renewed nor released, and frees itself within
// Lease.
//
// An InFlight is safe for concurrent use. It runs one goroutine, to renew leases, which
// Close stops.
type InFlight struct {
	store  StoreOptions
	limit  int
	lease  time.Duration
	retry  time.Duration
	local  *limit.InFlight
	circ   *circuit
	idBase string
	seq    atomic.Uint64

	mu   sync.Mutex
	held map[string]string // lease id → Redis key, for the leases this process holds

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ limit.Limiter = (*InFlight)(nil)

// NewInFlight returns an [InFlight] with the given options, or an error naming the bad
// field. Close it when done.
func NewInFlight(opts InFlightOptions) (*InFlight, error) {
	if err := opts.Store.check("InFlightOptions"); err != nil {
		return nil, err
	}
	if opts.Lease == 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Second
	}
	switch {
	case opts.Limit < 1 || opts.Limit > 1<<30:
		return nil, fmt.Errorf("limit/redis: InFlightOptions.Limit %d is not in [1, 1<<30]: %w", opts.Limit, ErrOption)
	case opts.Lease < time.Second:
		return nil, fmt.Errorf("limit/redis: InFlightOptions.Lease %v is under 1s: %w", opts.Lease, ErrOption)
	case opts.RetryAfter < 0:
		return nil, fmt.Errorf("limit/redis: InFlightOptions.RetryAfter %v is negative: %w", opts.RetryAfter, ErrOption)
	case opts.MaxKeys < 0 || opts.MaxKeys > 1<<30:
		return nil, fmt.Errorf("limit/redis: InFlightOptions.MaxKeys %d is not in [1, 1<<30]: %w", opts.MaxKeys, ErrOption)
	}
	local, err := limit.NewInFlight(limit.InFlightOptions{Limit: opts.Limit, MaxKeys: opts.MaxKeys, RetryAfter: opts.RetryAfter})
	if err != nil {
		return nil, fmt.Errorf("limit/redis: the fallback: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	f := &InFlight{
		store:  opts.Store,
		limit:  opts.Limit,
		lease:  opts.Lease,
		retry:  opts.RetryAfter,
		local:  local,
		circ:   newCircuit("in-flight "+opts.Store.Prefix, &opts.Store),
		idBase: hex.EncodeToString(id[:]) + ":",
		held:   map[string]string{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go f.renewLoop()
	return f, nil
}

// Limit implements [limit.Limiter]: it takes a slot for key, in Redis or else from the
// fallback; the Decision's Release gives it back. It returns an error only when ctx ends
// first.
func (f *InFlight) Limit(ctx context.Context, key string) (limit.Decision, error) {
	id := f.idBase + strconv.FormatUint(f.seq.Add(1), 36)
	rkey := f.store.Prefix + "f:" + key
	var taken int64
	ok, err := f.circ.call(ctx, f.store.Timeout, func(ctx context.Context) error {
		var err error
		taken, err = acquireScript.Run(ctx, f.store.Client, []string{rkey}, f.limit, f.lease.Milliseconds(), id).Int64()
		return err
	})
	if err != nil {
		return limit.Decision{}, err
	}
	if ok {
		if taken != 1 {
			return limit.Decision{RetryAfter: f.retry}, nil
		}
		f.mu.Lock()
		f.held[id] = rkey
		f.mu.Unlock()
		l := &lease{f: f, id: id, key: rkey}
		return limit.Decision{Allowed: true, Release: l.release}, nil
	}
	switch f.store.Fallback {
	case FailOpen:
		return limit.Decision{Allowed: true}, nil
	case FailClosed:
		return limit.Decision{RetryAfter: f.store.RetryInterval}, nil
	}
	return f.local.Limit(ctx, key)
}

// Up reports whether the limiter uses Redis now, rather than its fallback.
func (f *InFlight) Up() bool { return f.circ.up() }

// Held returns how many leases in Redis this process holds now.
func (f *InFlight) Held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

// Close stops renewing leases. The leases still held expire within Lease; their
// releases still give them back.
func (f *InFlight) Close() error {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	return nil
}

type lease struct {
	f       *InFlight
	id, key string
	done    atomic.Bool
}

// release gives the lease back: it stops being renewed, and is removed from Redis
// unless Redis is down (it then expires by itself).
func (l *lease) release() {
	if !l.done.CompareAndSwap(false, true) {
		return
	}
	f := l.f
	f.mu.Lock()
	delete(f.held, l.id)
	f.mu.Unlock()
	f.circ.call(context.Background(), f.store.Timeout, func(ctx context.Context) error {
		return f.store.Client.ZRem(ctx, l.key, l.id).Err()
	})
}

// renewBatch is how many leases one renewal call extends.
const renewBatch = 256

func (f *InFlight) renewLoop() {
	defer close(f.done)
	tick := time.NewTicker(f.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
			f.renew()
		}
	}
}

// renew extends the leases held, in batches; a batch whose keys a Redis Cluster
// spreads over several nodes goes one lease at a time.
func (f *InFlight) renew() {
	f.mu.Lock()
	keys := make([]string, 0, len(f.held))
	ids := make([]any, 0, len(f.held)+1)
	for id, key := range f.held {
		keys = append(keys, key)
		ids = append(ids, id)
	}
	f.mu.Unlock()
	leaseMS := f.lease.Milliseconds()
	for len(keys) > 0 {
		n := min(len(keys), renewBatch)
		batch := keys[:n]
		args := append([]any{leaseMS}, ids[:n]...)
		keys, ids = keys[n:], ids[n:]
		f.circ.call(context.Background(), f.store.Timeout, func(ctx context.Context) error {
			err := renewScript.Run(ctx, f.store.Client, batch, args...).Err()
			if err != nil && isCrossSlot(err) {
				for i := range batch {
					if err := renewScript.Run(ctx, f.store.Client, batch[i:i+1], leaseMS, args[i+1]).Err(); err != nil {
						return err
					}
				}
				return nil
			}
			if errors.Is(err, goredis.Nil) {
				return nil
			}
			return err
		})
	}
}

func isCrossSlot(err error) bool { return strings.HasPrefix(err.Error(), "CROSSSLOT") }
