package syslog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newHandler returns a Handler sending to r, closed at the end of the test.
func newHandler(t *testing.T, r *receiver, opts Options) *Handler {
	t.Helper()
	opts.Network = r.network
	opts.Addr = r.addr
	if opts.TLSConfig == nil {
		opts.TLSConfig = r.tlsClient
	}
	if opts.Level == nil {
		opts.Level = slog.LevelDebug
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

var transports = []string{"unixgram", "unix", "udp", "tcp", "tcp+tls"}

func TestTransports(t *testing.T) {
	for _, network := range transports {
		t.Run(network, func(t *testing.T) {
			r := startReceiver(t, network, "")
			h := newHandler(t, r, Options{AppName: "gw", Hostname: "edge1", ProcID: "42", MsgID: "ACCESS", Facility: Local3})
			log := slog.New(h)
			log.Info("first", "status", 502, "peer", "10.0.0.7:8080")
			log.Error("second")
			log.Debug("", "k", "v")

			before := time.Now()
			m := r.next(t)
			if m.Pri != 19*8+6 || m.Hostname != "edge1" || m.AppName != "gw" || m.ProcID != "42" || m.MsgID != "ACCESS" {
				t.Errorf("header: %+v", m)
			}
			ts, _ := time.Parse(time.RFC3339Nano, m.Time)
			if d := before.Sub(ts); d < 0 || d > time.Minute {
				t.Errorf("TIMESTAMP %s, logged before %s", m.Time, before)
			}
			if m.SDID != DefaultSDID || len(m.Params) != 2 || m.Params[0] != [2]string{"status", "502"} || m.Params[1] != [2]string{"peer", "10.0.0.7:8080"} {
				t.Errorf("structured data: %q %q", m.SDID, m.Params)
			}
			if m.Msg != "first" || m.BOM {
				t.Errorf("MSG %q, BOM %v", m.Msg, m.BOM)
			}
			if m := r.next(t); m.Pri != 19*8+3 || m.Msg != "second" || m.SDID != "" {
				t.Errorf("second: %+v", m)
			}
			if m := r.next(t); m.Pri != 19*8+7 || m.Msg != "" || len(m.Params) != 1 {
				t.Errorf("third: %+v", m)
			}
			if n := h.Dropped(); n != 0 {
				t.Errorf("Dropped() = %d", n)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, 7}, {slog.LevelDebug, 7}, {slog.LevelDebug + 2, 7}, {-1, 7},
		{slog.LevelInfo, 6}, {slog.LevelInfo + 1, 5}, {slog.LevelInfo + 3, 5},
		{slog.LevelWarn, 4}, {slog.LevelWarn + 3, 4},
		{slog.LevelError, 3}, {slog.LevelError + 3, 3},
		{slog.LevelError + 4, 2}, {slog.LevelError + 8, 1}, {slog.LevelError + 12, 0}, {100, 0},
	}
	r := startReceiver(t, "udp", "")
	h := newHandler(t, r, Options{Facility: Kern, Level: slog.Level(-100)})
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			if err := h.Handle(context.Background(), slog.NewRecord(time.Now(), tt.level, "m", 0)); err != nil {
				t.Fatal(err)
			}
			if m := r.next(t); m.Pri != tt.want {
				t.Errorf("severity %d, want %d", m.Pri, tt.want)
			}
		})
	}
}

func TestEnabled(t *testing.T) {
	r := startReceiver(t, "udp", "")
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	h := newHandler(t, r, Options{Level: &lv})
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelWarn) {
		t.Error("Enabled disagrees with Level Warn")
	}
	lv.Set(slog.LevelDebug)
	if !h.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled does not follow the LevelVar")
	}
	opts := Options{Network: "udp", Addr: r.addr}
	h2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.Enabled(ctx, slog.LevelDebug) || !h2.Enabled(ctx, slog.LevelInfo) {
		t.Error("the default level is not Info")
	}
}

// TestSlogtest runs the standard library's conformance tests of slog handlers,
// reading each record back from the wire: groups nest by their dotted names.
func TestSlogtest(t *testing.T) {
	r := startReceiver(t, "udp", "")
	newH := func(t *testing.T) slog.Handler {
		return newHandler(t, r, Options{})
	}
	result := func(t *testing.T) map[string]any {
		m := r.next(t)
		out := map[string]any{slog.LevelKey: m.Pri & 7, slog.MessageKey: m.Msg}
		if m.Time != "" {
			out[slog.TimeKey] = m.Time
		}
		for _, p := range m.Params {
			keys := strings.Split(p[0], ".")
			dst := out
			for _, k := range keys[:len(keys)-1] {
				sub, ok := dst[k].(map[string]any)
				if !ok {
					sub = map[string]any{}
					dst[k] = sub
				}
				dst = sub
			}
			dst[keys[len(keys)-1]] = p[1]
		}
		return out
	}
	slogtest.Run(t, newH, result)
}

type token string

func (tok token) LogValue() slog.Value { return slog.StringValue("redacted") }

func TestAttrs(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 0, 1500, time.UTC)
	tests := []struct {
		name string
		log  func(*slog.Logger)
		sd   [][2]string // structured data
		text string      // MSG in the Text format
	}{
		{
			name: "kinds",
			log: func(l *slog.Logger) {
				l.Info("m", "s", "x", "i", -3, "u", uint64(7), "f", 1.5, "b", true,
					"d", 1500*time.Millisecond, "t", at, "e", errors.New("boom"), "v", token("secret"))
			},
			sd: [][2]string{{"s", "x"}, {"i", "-3"}, {"u", "7"}, {"f", "1.5"}, {"b", "true"},
				{"d", "1.5s"}, {"t", "2026-12-06T21:00:00.0000015Z"}, {"e", "boom"}, {"v", "redacted"}},
			text: `m s=x i=-3 u=7 f=1.5 b=true d=1.5s t=2026-12-06T21:00:00.0000015Z e=boom v=redacted`,
		},
		{
			name: "escaping",
			log:  func(l *slog.Logger) { l.Info(`a "b" c`, "q", `say "hi" \o/ [x]`, "bad", "\xff") },
			sd:   [][2]string{{"q", `say "hi" \o/ [x]`}, {"bad", "\uFFFD"}},
			text: `a "b" c q="say \"hi\" \\o/ [x]" bad="\xff"`,
		},
		{
			name: "groups and WithAttrs",
			log: func(l *slog.Logger) {
				l.With("svc", "gw").WithGroup("req").With("id", 9).WithGroup("up").
					Info("m", "peer", "p1", slog.Group("t", "ms", 3), slog.Group("empty"), slog.Group("", "inl", 1))
			},
			sd:   [][2]string{{"svc", "gw"}, {"req.id", "9"}, {"req.up.peer", "p1"}, {"req.up.t.ms", "3"}, {"req.up.inl", "1"}},
			text: `m svc=gw req.id=9 req.up.peer=p1 req.up.t.ms=3 req.up.inl=1`,
		},
		{
			name: "group without attributes is left out",
			log:  func(l *slog.Logger) { l.WithGroup("g").Info("m") },
			text: "m",
		},
		{
			name: "names made to fit",
			log: func(l *slog.Logger) {
				l.Info("m", "a b=c]d\"é", 1, strings.Repeat("k", 40), 2, "", 3)
			},
			sd:   [][2]string{{"a_b_c_d__", "1"}, {strings.Repeat("k", 32), "2"}, {"_", "3"}},
			text: `m "a b=c]d\"é"=1 ` + strings.Repeat("k", 40) + `=2 _=3`,
		},
		{
			name: "no message",
			log:  func(l *slog.Logger) { l.Info("", "k", "v") },
			sd:   [][2]string{{"k", "v"}},
			text: "k=v",
		},
		{
			name: "nothing",
			log:  func(l *slog.Logger) { l.Info("") },
		},
	}
	r := startReceiver(t, "unixgram", "")
	sdh := newHandler(t, r, Options{})
	texth := newHandler(t, r, Options{Format: Text})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.log(slog.New(sdh))
			m := r.next(t)
			if len(m.Params) != len(tt.sd) {
				t.Errorf("params %q, want %q", m.Params, tt.sd)
			}
			for i := range min(len(m.Params), len(tt.sd)) {
				if m.Params[i] != tt.sd[i] {
					t.Errorf("param %d: %q, want %q", i, m.Params[i], tt.sd[i])
				}
			}
			if (m.SDID == "") != (len(tt.sd) == 0) {
				t.Errorf("SD-ID %q with %d params", m.SDID, len(m.Params))
			}

			tt.log(slog.New(texth))
			m = r.next(t)
			if m.SDID != "" || m.Msg != tt.text {
				t.Errorf("text: SD-ID %q, MSG %q, want %q", m.SDID, m.Msg, tt.text)
			}
		})
	}
}

func TestBOM(t *testing.T) {
	r := startReceiver(t, "unix", "")
	h := newHandler(t, r, Options{BOM: true})
	slog.New(h).Info("grüezi \xfe")
	if m := r.next(t); !m.BOM || m.Msg != "grüezi \uFFFD" {
		t.Errorf("BOM %v, MSG %q", m.BOM, m.Msg)
	}
	slog.New(h).Info("")
	if m := r.next(t); m.BOM || m.Msg != "" {
		t.Errorf("empty message: BOM %v, MSG %q", m.BOM, m.Msg)
	}
}

func TestDefaults(t *testing.T) {
	r := startReceiver(t, "udp", "")
	h := newHandler(t, r, Options{})
	slog.New(h).Info("m")
	m := r.next(t)
	host, _ := os.Hostname()
	if m.Pri != 3*8+6 {
		t.Errorf("PRI %d, want daemon.info", m.Pri)
	}
	if m.ProcID != strconv.Itoa(os.Getpid()) || m.MsgID != "" {
		t.Errorf("PROCID %q MSGID %q", m.ProcID, m.MsgID)
	}
	if want := string(appendPrintable(nil, host, maxHostname)); m.Hostname != want {
		t.Errorf("HOSTNAME %q, want %q", m.Hostname, want)
	}
	if m.AppName == "" || len(m.AppName) > maxAppName {
		t.Errorf("APP-NAME %q", m.AppName)
	}

	h = newHandler(t, r, Options{Hostname: "-", AppName: "-", ProcID: "-"})
	h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0))
	if m := r.next(t); m.Time != "" || m.Hostname != "" || m.AppName != "" || m.ProcID != "" {
		t.Errorf("nil values: %+v", m)
	}
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		opts  Options
		field string
	}{
		{Options{Network: "sctp", Addr: "x"}, "Network"},
		{Options{Network: "tcp"}, "Addr"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", Facility: Local7 + 1}, "Facility"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", Format: 9}, "Format"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", SDID: "gotthard"}, "SDID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", SDID: "g@x1"}, "SDID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", SDID: "g w@1"}, "SDID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", SDID: strings.Repeat("g", 30) + "@123"}, "SDID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", AppName: "my app"}, "AppName"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", AppName: strings.Repeat("a", 49)}, "AppName"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", Hostname: "hé"}, "Hostname"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", ProcID: strings.Repeat("1", 129)}, "ProcID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", MsgID: strings.Repeat("m", 33)}, "MsgID"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", WriteTimeout: -1}, "WriteTimeout"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", MaxBackoff: -1}, "MaxBackoff"},
		{Options{Network: "udp", Addr: "127.0.0.1:1", MaxDatagramSize: 479}, "MaxDatagramSize"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), "Options."+tt.field+":") {
				t.Errorf("New(%+v) = %v, want an error about %s", tt.opts, err, tt.field)
			}
		})
	}
	// A receiver that is not there fails New.
	if _, err := New(Options{Network: "unixgram", Addr: socketPath(t)}); err == nil {
		t.Error("New succeeded with no receiver")
	}
}

// TestAutoNetwork checks that an empty Network sends datagrams to a datagram socket
// and falls back to octet-counted streams on a stream socket.
func TestAutoNetwork(t *testing.T) {
	for _, network := range []string{"unixgram", "unix"} {
		t.Run(network, func(t *testing.T) {
			r := startReceiver(t, network, "")
			h, err := New(Options{Addr: r.addr})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			slog.New(h).Info("one")
			slog.New(h).Info("two")
			for _, want := range []string{"one", "two"} {
				if m := r.next(t); m.Msg != want {
					t.Errorf("MSG %q, want %q", m.Msg, want)
				}
			}
		})
	}
}

// BenchmarkFormat measures the formatting alone of BenchmarkHandle's record, to tell
// it apart from the write.
func BenchmarkFormat(b *testing.B) {
	cfg, err := newConfig(Options{Network: "udp", Addr: "127.0.0.1:514"})
	if err != nil {
		b.Fatal(err)
	}
	h := (&Handler{cfg: cfg}).WithAttrs([]slog.Attr{slog.String("service", "gateway")}).(*Handler)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "upstream failed", 0)
	r.AddAttrs(slog.String("peer", "10.0.0.7:8080"), slog.Int("status", 502), slog.Duration("took", 1500*time.Microsecond))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = h.format(buf[:0], r)
	}
}
