package syslog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
)

// Handler is an slog.Handler that writes each record as one RFC 5424 message to a
// syslog receiver. It is safe for concurrent use by multiple goroutines; the handlers
// returned by WithAttrs and WithGroup share its connection, its drop count and
// [Handler.Close]. Make one with [New]; the zero value is not usable.
type Handler struct {
	cfg *config
	s   *sink
	pre []byte // attributes of WithAttrs, formatted; each starts with ' '
	grp string // group prefix of WithGroup, "a.b." or ""
}

// New returns a Handler for opts, connected to the receiver. It fails if opts is
// invalid, naming the field, or if the first connection fails (a wrong path or port
// shows at start); later failures make it drop records and reconnect.
func New(opts Options) (*Handler, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := newSink(cfg)
	if err := s.connect(time.Now().Add(cfg.writeTimeout)); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, s: s}, nil
}

// Enabled reports whether l is at or above [Options.Level].
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.cfg.level.Level()
}

// WithAttrs returns a Handler that adds attrs to every record, formatted once here.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.pre = slices.Clip(h.pre)
	for _, a := range attrs {
		h2.pre = h2.appendAttr(h2.pre, h.grp, a)
	}
	return &h2
}

// WithGroup returns a Handler that qualifies the keys of later attributes with name
// and a dot ("name.key").
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.grp = h.grp + name + "."
	return &h2
}

// Handle formats r as one RFC 5424 message and writes it. It returns an error when the
// record is dropped (see [Handler.Dropped]); slog.Logger ignores it.
//
// The record's level gives the severity. Levels between the named ones take the
// severity of the named level below them, except that those between Info and Warn
// are Notice, and levels above Error climb to Emergency:
//
//	level < Info            7 Debug
//	level = Info            6 Informational
//	Info < level < Warn     5 Notice
//	Warn <= level < Error   4 Warning
//	Error <= level < +4     3 Error
//	Error+4 <= level < +8   2 Critical
//	Error+8 <= level < +12  1 Alert
//	Error+12 <= level       0 Emergency
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	bp := h.s.getBuf()
	b := h.format((*bp)[:frameRoom], r)
	err := h.s.write(b)
	*bp = b
	h.s.putBuf(bp)
	return err
}

// Dropped returns how many records could not be written, since New, by this Handler
// and those derived from it.
func (h *Handler) Dropped() uint64 {
	return h.s.dropped.Load()
}

// Close closes the connection; records handled afterwards are dropped. It waits for a
// write in progress (at most WriteTimeout). Over "tcp+tls" it first sends the TLS
// close_notify alert, as RFC 5425 asks, which may take up to 5s (crypto/tls's bound)
// if the receiver does not read.
func (h *Handler) Close() error {
	return h.s.close()
}

// rfc3339Micro is RFC 3339 with microseconds, as RFC 5424 section 6.2.3 allows
// (TIME-SECFRAC of up to six digits).
const rfc3339Micro = "2006-01-02T15:04:05.000000Z07:00"

// severity maps a slog level to a syslog severity (RFC 5424 table 2), as
// [Handler.Handle] says.
func severity(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7
	case l == slog.LevelInfo:
		return 6
	case l < slog.LevelWarn:
		return 5
	case l < slog.LevelError:
		return 4
	case l < slog.LevelError+4:
		return 3
	case l < slog.LevelError+8:
		return 2
	case l < slog.LevelError+12:
		return 1
	}
	return 0
}

// format appends the RFC 5424 message for r to b.
func (h *Handler) format(b []byte, r slog.Record) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(h.cfg.facility*8+severity(r.Level)), 10)
	b = append(b, ">1 "...)
	if r.Time.IsZero() {
		b = append(b, '-')
	} else {
		b = r.Time.AppendFormat(b, rfc3339Micro)
	}
	b = append(b, h.cfg.header...)
	if h.cfg.text {
		return h.formatText(b, r)
	}

	sd := len(b)
	b = append(b, '[')
	b = append(b, h.cfg.sdID...)
	empty := len(b)
	b = append(b, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, h.grp, a)
		return true
	})
	if len(b) == empty {
		b = append(b[:sd], '-')
	} else {
		b = append(b, ']')
	}
	if r.Message != "" {
		b = append(b, ' ')
		b = h.appendBOM(b)
		b = appendUTF8(b, r.Message)
	}
	return b
}

// formatText appends "-" for the structured data and then the message and the
// attributes as text.
func (h *Handler) formatText(b []byte, r slog.Record) []byte {
	b = append(b, "- "...)
	b = h.appendBOM(b)
	msg := len(b)
	b = appendUTF8(b, r.Message)
	attrs := len(b)
	b = append(b, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, h.grp, a)
		return true
	})
	switch {
	case len(b) == msg:
		return b[:msg-len(h.bom())-1] // no MSG at all
	case r.Message == "" && attrs < len(b):
		return append(b[:msg], b[msg+1:]...) // the attributes' leading space
	}
	return b
}

func (h *Handler) bom() string {
	if h.cfg.bom {
		return "\uFEFF"
	}
	return ""
}

func (h *Handler) appendBOM(b []byte) []byte {
	return append(b, h.bom()...)
}

// appendAttr appends a, qualified by prefix, as " name=value": a PARAM-NAME and a
// quoted, escaped PARAM-VALUE for structured data, or text. Groups are flattened with
// dotted names; empty attributes and empty groups are left out, groups with an empty
// key are inlined, as the slog.Handler contract asks.
func (h *Handler) appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return b
		}
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range attrs {
			b = h.appendAttr(b, prefix, ga)
		}
		return b
	}
	key := a.Key
	if key == "" {
		key = "_"
	}
	b = append(b, ' ')
	if h.cfg.text {
		b = appendTextKey(b, prefix, key)
		b = append(b, '=')
		return appendTextValue(b, a.Value)
	}
	b = appendSDName(b, prefix, key)
	b = append(b, '=', '"')
	b = appendSDValue(b, a.Value)
	return append(b, '"')
}

// appendSDName appends prefix+key as a PARAM-NAME: characters not allowed in an
// SD-NAME become '_', and the name is cut to 32 characters.
func appendSDName(b []byte, prefix, key string) []byte {
	n := 0
	for _, s := range [2]string{prefix, key} {
		for _, r := range s {
			if n == maxSDName {
				return b
			}
			c := byte('_')
			if r < 127 && sdNameChar(byte(r)) {
				c = byte(r)
			}
			b = append(b, c)
			n++
		}
	}
	return b
}

// appendSDValue appends v as the content of a PARAM-VALUE.
func appendSDValue(b []byte, v slog.Value) []byte { return appendValue(b, v, appendEscaped) }

// appendValue appends v: numbers, booleans, durations and times as slog's text handler
// writes them, strings and any other value as text through str.
func appendValue(b []byte, v slog.Value, str func([]byte, string) []byte) []byte {
	switch v.Kind() {
	case slog.KindString:
		return str(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return append(b, v.Duration().String()...)
	case slog.KindTime:
		return v.Time().AppendFormat(b, time.RFC3339Nano)
	}
	return str(b, anyString(v.Any()))
}

// anyString formats a value of KindAny the way slog.TextHandler does: errors by
// their message, TextMarshalers by their text, byte slices as strings.
func anyString(v any) string {
	switch x := v.(type) {
	case error:
		return x.Error()
	case interface{ MarshalText() ([]byte, error) }:
		t, err := x.MarshalText()
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(t)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// appendEscaped appends s as PARAM-VALUE content: '"', '\' and ']' escaped with a
// backslash (RFC 5424 section 6.3.3) and invalid UTF-8 replaced by U+FFFD.
func appendEscaped(b []byte, s string) []byte { return appendClean(b, s, true) }
