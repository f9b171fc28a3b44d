package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Format is the layout of a log line.
type Format uint8

const (
	// Combined is the combined log format of Apache and nginx:
	//
	//	%h - - [%d/%b/%Y:%H:%M:%S %z] "%r" %s %b "%{Referer}" "%{User-Agent}"
	//
	// with "-" for an empty value and bytes escaped as nginx escapes them (see the
	// package doc).
	Combined Format = iota + 1
	// JSON is one JSON object per line, with the fields the package doc lists.
	JSON
)

// String returns the format's name as [ParseFormat] reads it.
func (f Format) String() string {
	switch f {
	case Combined:
		return "combined"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ErrUnknownFormat is returned, wrapped, by [ParseFormat] for a name it does not know.
var ErrUnknownFormat = errors.New("accesslog: unknown format")

// ParseFormat returns the format named s: "combined" or "json", in any case, for
// a command-line flag or a configuration file.
func ParseFormat(s string) (Format, error) {
	switch {
	case equalFold(s, "combined"):
		return Combined, nil
	case equalFold(s, "json"):
		return JSON, nil
	}
	return 0, fmt.Errorf("%w %q (want \"combined\" or \"json\")", ErrUnknownFormat, s)
}

// equalFold reports whether s equals the lower-case ASCII word w, ignoring ASCII case.
func equalFold(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// Default values of [Options].
const (
	DefaultName          = "accesslog"
	DefaultBufferSize    = 64 << 10
	DefaultFlushInterval = time.Second
	DefaultWriteTimeout  = time.Second
	// MinBufferSize is the smallest BufferSize New accepts.
	MinBufferSize = 4 << 10
	// ErrorLogInterval is the least time between two logs of write errors.
	ErrorLogInterval = time.Minute
)

// Options configures a [Logger]. Exactly one of Path and Writer must be set, and
// Format is required.
type Options struct {
	// Path is the file to append to, created with mode 0644 (less the umask) if it
	// does not exist. [Logger.Reopen] and SIGUSR1 (while [Logger.Run] runs) reopen it
	// by this name, for log rotation.
	Path string
	// Writer receives the lines if Path is empty: standard output, a pipe, a buffer.
	// The Logger never closes it, and Reopen does nothing to it. Writes to it are
	// serialized, so it need not be safe for concurrent use.
	Writer io.Writer
	// Format is the layout of the lines: [Combined] or [JSON]. Required.
	Format Format

	// BufferSize is the size of each of the two buffers lines are gathered in before
	// they are written: a write moves a whole buffer (or a line longer than it). If
	// zero, 64 KiB; at least 4 KiB.
	BufferSize int
	// FlushInterval is the longest a line waits in the buffer before it is written,
	// while [Logger.Run] runs (and, without it, the longest a line waits when another
	// line follows it). If zero, one second.
	FlushInterval time.Duration
	// WriteTimeout is the longest a request waits for a write in progress when its
	// line finds both buffers full; past it, the output is taken as stalled, and lines
	// are dropped (and counted) without waiting until a write completes. If zero, one
	// second.
	WriteTimeout time.Duration
	// Location is the time zone of the lines' times. If nil, time.Local, as nginx and
	// Apache write them; time.UTC makes JSON times end in "Z".
	Location *time.Location

	// Name is the name [Logger.Name] returns, to tell several loggers apart in a
	// server. If empty, "accesslog".
	Name string
	// Logger receives the write errors (at most one record a minute, at Error) and the
	// failures of a reopen on SIGUSR1. If nil, slog.Default().
	Logger *slog.Logger
}

// validate checks o and fills its defaults.
func (o *Options) validate() error {
	switch {
	case o.Path == "" && o.Writer == nil:
		return errors.New("accesslog: Options.Path or Options.Writer must be set")
	case o.Path != "" && o.Writer != nil:
		return errors.New("accesslog: Options.Path and Options.Writer are both set; set one")
	}
	switch o.Format {
	case Combined, JSON:
	case 0:
		return errors.New("accesslog: Options.Format is not set (accesslog.Combined or accesslog.JSON)")
	default:
		return fmt.Errorf("accesslog: Options.Format: %w %v", ErrUnknownFormat, o.Format)
	}
	switch {
	case o.BufferSize == 0:
		o.BufferSize = DefaultBufferSize
	case o.BufferSize < MinBufferSize:
		return fmt.Errorf("accesslog: Options.BufferSize %d is below the minimum of %d", o.BufferSize, MinBufferSize)
	}
	switch {
	case o.FlushInterval == 0:
		o.FlushInterval = DefaultFlushInterval
	case o.FlushInterval < 0:
		return fmt.Errorf("accesslog: Options.FlushInterval %v is negative", o.FlushInterval)
	}
	switch {
	case o.WriteTimeout == 0:
		o.WriteTimeout = DefaultWriteTimeout
	case o.WriteTimeout < 0:
		return fmt.Errorf("accesslog: Options.WriteTimeout %v is negative", o.WriteTimeout)
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
