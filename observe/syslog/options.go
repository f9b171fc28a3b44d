package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Facility is a syslog facility (RFC 5424 section 6.2.1). The zero value means
// [Daemon]; the constants carry the RFC's codes through [Facility.Code].
type Facility uint8

// The facilities of RFC 5424 table 1.
const (
	_ Facility = iota
	Kern
	User
	Mail
	Daemon
	Auth
	Syslog
	LPR
	News
	UUCP
	Cron
	AuthPriv
	FTP
	NTP
	Audit
	Alert
	Clock
	Local0
	Local1
	Local2
	Local3
	Local4
	Local5
	Local6
	Local7
)

// Code returns the facility's numerical code (0 for Kern to 23 for Local7); the zero
// Facility gives Daemon's code, 3.
func (f Facility) Code() int {
	if f == 0 {
		return int(Daemon) - 1
	}
	return int(f) - 1
}

// Format says where a record's attributes go.
type Format uint8

const (
	// StructuredData puts the attributes in one SD-ELEMENT of the STRUCTURED-DATA
	// field, as PARAM-NAME="PARAM-VALUE" pairs.
	StructuredData Format = iota
	// Text puts the attributes after the message as key=value text, quoted like
	// slog.TextHandler quotes them, and leaves STRUCTURED-DATA empty ("-"). Use it
	// for receivers that drop or do not display structured data.
	Text
)

// Default values of [Options].
const (
	DefaultPath            = "/dev/log"
	DefaultSDID            = "gotthard@32473"
	DefaultWriteTimeout    = time.Second
	DefaultMaxBackoff      = 5 * time.Second
	DefaultMaxDatagramUDP  = 2048
	DefaultMaxDatagramUnix = 8192
)

// Field length limits of RFC 5424 section 6.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// Options configures a [Handler]. The zero value logs at Info and above to the local
// syslog daemon through /dev/log.
type Options struct {
	// Network is the transport: "unixgram" (a datagram Unix socket, one record per
	// datagram), "unix" (a stream Unix socket), "udp" (one record per datagram, RFC
	// 5426), "tcp" (RFC 6587 octet counting, as "unix" is) or "tcp+tls" (the same
	// over TLS, RFC 5425). If empty, "unixgram", or "unix" if the socket turns out to
	// be a stream socket (as some syslog-ng setups make /dev/log).
	Network string
	// Addr is the socket path for "unixgram" and "unix" and host:port for "udp" and
	// "tcp" and "tcp+tls". If empty, "/dev/log" for "unixgram"; required for the
	// others.
	Addr string
	// TLSConfig configures the client side of "tcp+tls"; New keeps a clone. An empty
	// ServerName is taken from Addr. If nil, the system's roots verify the receiver,
	// with TLS 1.2 at least. Other networks ignore it.
	TLSConfig *tls.Config

	// Facility is the facility of every record. If zero, [Daemon]: a proxy is a
	// system daemon, and stock rsyslog configurations file daemon messages where
	// operators look, while local0 to local7 mean what each site makes them mean.
	Facility Facility
	// Level is the minimum level logged; a *slog.LevelVar changes it while the
	// program runs. If nil, slog.LevelInfo.
	Level slog.Leveler
	// Format says where attributes go. If zero, [StructuredData].
	Format Format
	// SDID is the SD-ID of the element holding the attributes: NAME@NUMBER, where
	// NUMBER is an IANA private enterprise number. If empty, "gotthard@32473"
	// (32473 is the number RFC 5612 reserves for documentation; a site with its own
	// number should use it).
	SDID string
	// BOM makes the message start with the UTF-8 byte order mark, which RFC 5424
	// section 6.4 uses to say "this MSG is UTF-8". If false, the MSG field carries the
	// same UTF-8 bytes without it, which the RFC allows (MSG-ANY) and rsyslog and
	// syslog-ng read the same way; rsyslog keeps the mark in the message, where it
	// shows up as stray bytes in files and terminals. Invalid UTF-8 is replaced by
	// U+FFFD either way.
	BOM bool

	// Hostname is the HOSTNAME field. If empty, os.Hostname, with characters other
	// than printable US-ASCII replaced by '_'. "-" sends the nil value.
	Hostname string
	// AppName is the APP-NAME field (at most 48 printable US-ASCII characters). If
	// empty, the base name of os.Args[0], made to fit. "-" sends the nil value.
	AppName string
	// ProcID is the PROCID field (at most 128 printable US-ASCII characters). If
	// empty, the process ID. "-" sends the nil value.
	ProcID string
	// MsgID is the MSGID field of every record (at most 32 printable US-ASCII
	// characters). If empty, the nil value "-".
	MsgID string

	// WriteTimeout bounds how long one log call may wait: for the connection's lock,
	// to connect, and to write. A record that cannot be written in time is dropped
	// and counted (see [Handler.Dropped]). If zero, 1s.
	WriteTimeout time.Duration
	// MaxBackoff bounds the wait between reconnection attempts: after a failed
	// attempt, records are dropped without trying to connect for 100ms, doubling
	// after each further failure up to MaxBackoff. If zero, 5s.
	MaxBackoff time.Duration
	// MaxDatagramSize bounds a record sent over "udp" or "unixgram"; longer ones are
	// truncated (at a UTF-8 character boundary), as RFC 5426 section 3.2 allows. It
	// must be at least 480 (RFC 5426's minimum). If zero, 2048 for "udp" (which RFC
	// 5426 says receivers should accept) and 8192 for "unixgram" (rsyslog's default
	// maximum message size).
	MaxDatagramSize int
}

// config is the validated, immutable form of Options.
type config struct {
	network, addr string
	tls           *tls.Config // for "tcp+tls"
	stream        bool
	auto          bool // Network was empty: "unixgram", or "unix" if that fails
	facility      int
	level         slog.Leveler
	text          bool
	sdID          string
	bom           bool
	header        string // " HOSTNAME APP-NAME PROCID MSGID "
	writeTimeout  time.Duration
	maxBackoff    time.Duration
	maxDatagram   int
}

// newConfig validates opts and fills in defaults.
func newConfig(opts Options) (*config, error) {
	c := &config{
		network:      opts.Network,
		addr:         opts.Addr,
		level:        opts.Level,
		bom:          opts.BOM,
		sdID:         opts.SDID,
		writeTimeout: opts.WriteTimeout,
		maxBackoff:   opts.MaxBackoff,
		maxDatagram:  opts.MaxDatagramSize,
	}
	if c.network == "" {
		c.network = "unixgram"
		c.auto = true
	}
	switch c.network {
	case "unixgram":
		if c.addr == "" {
			c.addr = DefaultPath
		}
		if c.maxDatagram == 0 {
			c.maxDatagram = DefaultMaxDatagramUnix
		}
	case "udp", "udp4", "udp6":
		if c.maxDatagram == 0 {
			c.maxDatagram = DefaultMaxDatagramUDP
		}
	case "unix", "tcp", "tcp4", "tcp6":
		c.stream = true
	case "tcp+tls":
		c.stream = true
		if opts.TLSConfig != nil {
			c.tls = opts.TLSConfig.Clone()
		} else {
			c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, fmt.Errorf("syslog: Options.Network: unknown network %q", c.network)
	}
	if c.addr == "" {
		return nil, fmt.Errorf("syslog: Options.Addr: required for network %q", c.network)
	}
	if opts.Facility > Local7 {
		return nil, fmt.Errorf("syslog: Options.Facility: %d is not a facility", opts.Facility)
	}
	c.facility = opts.Facility.Code()
	if c.level == nil {
		c.level = slog.LevelInfo
	}
	switch opts.Format {
	case StructuredData:
	case Text:
		c.text = true
	default:
		return nil, fmt.Errorf("syslog: Options.Format: unknown format %d", opts.Format)
	}
	if c.sdID == "" {
		c.sdID = DefaultSDID
	}
	if err := checkSDID(c.sdID); err != nil {
		return nil, fmt.Errorf("syslog: Options.SDID: %w", err)
	}
	if c.writeTimeout < 0 {
		return nil, errors.New("syslog: Options.WriteTimeout: negative")
	}
	if c.writeTimeout == 0 {
		c.writeTimeout = DefaultWriteTimeout
	}
	if c.maxBackoff < 0 {
		return nil, errors.New("syslog: Options.MaxBackoff: negative")
	}
	if c.maxBackoff == 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if !c.stream && c.maxDatagram < 480 {
		return nil, fmt.Errorf("syslog: Options.MaxDatagramSize: %d is below 480", c.maxDatagram)
	}

	host, err := headerField("Hostname", opts.Hostname, maxHostname, func() string {
		h, _ := os.Hostname()
		return h
	})
	if err != nil {
		return nil, err
	}
	app, err := headerField("AppName", opts.AppName, maxAppName, func() string {
		if len(os.Args) == 0 {
			return ""
		}
		return filepath.Base(os.Args[0])
	})
	if err != nil {
		return nil, err
	}
	proc, err := headerField("ProcID", opts.ProcID, maxProcID, func() string {
		return strconv.Itoa(os.Getpid())
	})
	if err != nil {
		return nil, err
	}
	msgID, err := headerField("MsgID", opts.MsgID, maxMsgID, func() string { return "" })
	if err != nil {
		return nil, err
	}
	c.header = " " + host + " " + app + " " + proc + " " + msgID + " "
	return c, nil
}

// headerField returns the value of a header field: v if set (checked), else the
// default made to fit, else the nil value.
func headerField(name, v string, limit int, def func() string) (string, error) {
	if v != "" {
		if len(v) > limit {
			return "", fmt.Errorf("syslog: Options.%s: longer than %d characters", name, limit)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 33 || v[i] > 126 {
				return "", fmt.Errorf("syslog: Options.%s: %q has characters other than printable US-ASCII", name, v)
			}
		}
		return v, nil
	}
	v = string(appendPrintable(nil, def(), limit))
	if v == "" {
		return "-", nil
	}
	return v, nil
}

// appendPrintable appends s with every character that is not printable US-ASCII
// replaced by '_', cut to limit bytes.
func appendPrintable(b []byte, s string, limit int) []byte {
	n := 0
	for _, r := range s {
		if n == limit {
			break
		}
		if r < 33 || r > 126 {
			r = '_'
		}
		b = append(b, byte(r))
		n++
	}
	return b
}

// checkSDID checks an SD-ID of the enterprise form NAME@NUMBER (RFC 5424 section
// 7.2.2); names without '@' are reserved for IANA registration.
func checkSDID(id string) error {
	if len(id) > maxSDName {
		return fmt.Errorf("%q is longer than %d characters", id, maxSDName)
	}
	for i := 0; i < len(id); i++ {
		if !sdNameChar(id[i]) {
			return fmt.Errorf("%q has a character not allowed in an SD-NAME", id)
		}
	}
	name, num, ok := strings.Cut(id, "@")
	if !ok || name == "" || num == "" || strings.Contains(num, "@") {
		return fmt.Errorf("%q is not of the form NAME@NUMBER", id)
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return fmt.Errorf("%q: %q is not a private enterprise number", id, num)
		}
	}
	return nil
}

// sdNameChar reports whether c may appear in an SD-NAME: printable US-ASCII except
// '=', SP, ']' and '"'.
func sdNameChar(c byte) bool {
	return c > 32 && c < 127 && c != '=' && c != ']' && c != '"'
}
