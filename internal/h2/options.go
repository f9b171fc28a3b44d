package h2

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of [Options].
const (
	DefaultMaxConcurrentStreams   = 128              // Options.MaxConcurrentStreams
	DefaultInitialWindowSize      = 256 << 10        // Options.InitialWindowSize
	DefaultConnWindowSize         = 1 << 20          // Options.ConnWindowSize
	DefaultMaxFrameSize           = 16 << 10         // Options.MaxFrameSize
	DefaultMaxHeaderListSize      = 64 << 10         // Options.MaxHeaderListSize
	DefaultIdleTimeout            = 2 * time.Minute  // Options.IdleTimeout
	DefaultHandshakeTimeout       = 10 * time.Second // Options.HandshakeTimeout
	DefaultWriteTimeout           = 30 * time.Second // Options.WriteTimeout
	DefaultRateWindow             = 10 * time.Second // Options.RateWindow
	DefaultMaxResets              = 400              // Options.MaxResets
	DefaultMaxControlFrames       = 1000             // Options.MaxControlFrames
	DefaultMaxContinuationFrames  = 64               // Options.MaxContinuationFrames
	DefaultMaxQueuedControlFrames = 1024             // Options.MaxQueuedControlFrames
)

// Protocol limits (RFC 9113 §6.5.2, §6.9.1).
const (
	initialWindow   = 65535 // the window of a connection or stream before SETTINGS
	maxWindow       = 1<<31 - 1
	minMaxFrameSize = 1 << 14
	maxMaxFrameSize = 1<<24 - 1
)

// Options configures a [Conn]. The zero value is usable: every zero field means the
// default named in its comment. Options is passed by value and not retained by
// reference.
type Options struct {
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS we advertise. A
	// stream opened beyond it is refused with RST_STREAM(REFUSED_STREAM) (RFC 9113
	// §5.1.2), which a client may retry. It also bounds the handlers running at once
	// on the connection: a stream the client reset keeps its place until its handler
	// has returned, and while that many handlers run, the next request head waits
	// (the connection reads nothing more) for one of them to return, so that the
	// rapid reset attack (CVE-2023-44487) cannot start unbounded work. If zero,
	// [DefaultMaxConcurrentStreams].
	MaxConcurrentStreams uint32

	// InitialWindowSize is the receive window of each stream we advertise
	// (SETTINGS_INITIAL_WINDOW_SIZE): how much request body a client may send ahead of
	// what the handler has read. It bounds the body memory held per stream. If zero,
	// [DefaultInitialWindowSize]; at most 2^31-1.
	InitialWindowSize uint32

	// ConnWindowSize is the receive window of the whole connection: how much request
	// body, over all streams, may wait for handlers. If zero, [DefaultConnWindowSize];
	// at least 65535 and at most 2^31-1.
	ConnWindowSize uint32

	// MaxFrameSize is the largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE).
	// If zero, [DefaultMaxFrameSize]; between 2^14 and 2^24-1.
	MaxFrameSize uint32

	// MaxHeaderListSize is the largest header list (request head or trailers) we
	// accept, counted on the decoded fields as RFC 9113 §6.5.2 does (name + value + 32
	// octets each), so that a small compressed block cannot expand into a large one
	// (an HPACK bomb). A larger list is answered with status 431. If zero,
	// [DefaultMaxHeaderListSize].
	MaxHeaderListSize uint32

	// IdleTimeout closes the connection (GOAWAY(NO_ERROR)) after it has had no open
	// stream for this long. If zero, [DefaultIdleTimeout]; negative means never.
	IdleTimeout time.Duration

	// HandshakeTimeout bounds the wait for the client preface and first SETTINGS frame.
	// If zero, [DefaultHandshakeTimeout].
	HandshakeTimeout time.Duration

	// WriteTimeout bounds every wait of a response write: a [Stream.WriteData] that
	// waits longer than this for the client to open its flow-control window resets
	// the stream (CANCEL) and returns [ErrWriteTimeout], and a socket write that
	// takes longer ends the connection. If zero, [DefaultWriteTimeout].
	WriteTimeout time.Duration

	// EnableConnectProtocol advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and accepts
	// extended CONNECT requests with a :protocol pseudo-header (RFC 8441, WebSocket
	// over HTTP/2). If false, :protocol makes a request malformed.
	EnableConnectProtocol bool

	// RateWindow is the window over which MaxResets and MaxControlFrames are counted.
	// If zero, [DefaultRateWindow].
	RateWindow time.Duration

	// MaxResets is how many streams may be reset per RateWindow, by the client
	// (RST_STREAM) or by us because of a client error, before the connection is
	// closed with GOAWAY(ENHANCE_YOUR_CALM). It defeats the rapid reset attack
	// (CVE-2023-44487) and its server-reset variant. If zero, [DefaultMaxResets].
	MaxResets int

	// MaxControlFrames is how many SETTINGS, PING, PRIORITY frames, WINDOW_UPDATE
	// frames with an increment under 1024, empty DATA frames without END_STREAM and
	// frames on closed streams may arrive per RateWindow before the connection is
	// closed with GOAWAY(ENHANCE_YOUR_CALM), beyond one for each frame that did work
	// (a request head, or a DATA frame with data in either direction): a busy client
	// may probe its windows with PINGs, a flood does no work. If zero,
	// [DefaultMaxControlFrames].
	MaxControlFrames int

	// MaxContinuationFrames is how many CONTINUATION frames one header block may
	// have; a longer block closes the connection with GOAWAY(ENHANCE_YOUR_CALM)
	// without being buffered. If zero, [DefaultMaxContinuationFrames].
	MaxContinuationFrames int

	// MaxQueuedControlFrames is how many control frames we may have waiting to be
	// written (SETTINGS and PING acknowledgements, WINDOW_UPDATE, RST_STREAM) because
	// the client does not read; more close the connection. If zero,
	// [DefaultMaxQueuedControlFrames].
	MaxQueuedControlFrames int

	// Limit, if not nil, bounds the handlers running at once over every connection
	// that shares it (a service's), streams the client reset whose handlers have not
	// returned included. A stream that would go beyond it is refused with
	// RST_STREAM(REFUSED_STREAM), which a client may retry (RFC 9113 §8.7). Refusals
	// for this reason are not counted against the connection's MaxResets.
	Limit *Limit

	// Pool supplies the buffers that hold request body data. If nil, the connection
	// uses a pool of its own. Sharing one pool among connections lets an idle
	// connection hold no body buffer.
	Pool *BufPool

	// Logger receives one Debug line per connection error (protocol errors, limits).
	// If nil, slog.Default().
	Logger *slog.Logger
}

// withDefaults returns o with zero fields set to their defaults, or an error naming the
// first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if o.InitialWindowSize == 0 {
		o.InitialWindowSize = DefaultInitialWindowSize
	}
	if o.ConnWindowSize == 0 {
		o.ConnWindowSize = DefaultConnWindowSize
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.MaxResets <= 0 {
		o.MaxResets = DefaultMaxResets
	}
	if o.MaxControlFrames <= 0 {
		o.MaxControlFrames = DefaultMaxControlFrames
	}
	if o.MaxContinuationFrames <= 0 {
		o.MaxContinuationFrames = DefaultMaxContinuationFrames
	}
	if o.MaxQueuedControlFrames <= 0 {
		o.MaxQueuedControlFrames = DefaultMaxQueuedControlFrames
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.InitialWindowSize > maxWindow:
		return o, fmt.Errorf("h2: Options.InitialWindowSize %d over 2^31-1", o.InitialWindowSize)
	case o.ConnWindowSize > maxWindow || o.ConnWindowSize < initialWindow:
		return o, fmt.Errorf("h2: Options.ConnWindowSize %d not in [65535, 2^31-1]", o.ConnWindowSize)
	case o.MaxFrameSize < minMaxFrameSize || o.MaxFrameSize > maxMaxFrameSize:
		return o, fmt.Errorf("h2: Options.MaxFrameSize %d not in [2^14, 2^24-1]", o.MaxFrameSize)
	}
	return o, nil
}

// Limit is a bound on the stream handlers running at once, shared by the connections
// of one service through [Options.Limit]. It is safe for concurrent use.
type Limit struct {
	max int64
	n   atomic.Int64
}

// NewLimit returns a Limit of n handlers; n must be positive.
func NewLimit(n int) *Limit {
	if n <= 0 {
		panic("h2: NewLimit of a non-positive count")
	}
	return &Limit{max: int64(n)}
}

// InFlight returns how many handlers hold a place in l now.
func (l *Limit) InFlight() int { return int(l.n.Load()) }

// acquire takes a place for a handler, and reports false if l is full. A nil Limit
// is never full.
func (l *Limit) acquire() bool {
	if l == nil {
		return true
	}
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

// release gives back a place taken with acquire.
func (l *Limit) release() {
	if l != nil {
		l.n.Add(-1)
	}
}
