package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by [DefaultConfig] and used when a [Config] field is zero.
const (
	// DefaultGracefulShutdownTimeout bounds a graceful shutdown when
	// graceful_shutdown_timeout_seconds is zero.
	DefaultGracefulShutdownTimeout = 30 * time.Second
	// DefaultUpgradeTimeout bounds each side's wait in a graceful upgrade when
	// upgrade_timeout_seconds is zero.
	DefaultUpgradeTimeout = 30 * time.Second
	// DefaultUpgradeSock is the path of the upgrade socket when upgrade_sock is empty.
	DefaultUpgradeSock = "/tmp/gotthard_upgrade.sock"
)

// maxConfigSize bounds the size of a configuration file.
const maxConfigSize = 1 << 20

// Config is the server configuration, read from YAML with [LoadConfig] or [ParseConfig] or
// built in code. Keys follow Pingora's configuration file where they mean the same thing,
// so a Pingora file needs few changes.
//
// An example file:
//
//	version: 1
//	pid_file: /run/gotthard.pid
//	error_log: /var/log/gotthard.log
//	upgrade_sock: /run/gotthard_upgrade.sock
//	graceful_shutdown_timeout_seconds: 30
//	upstream_keepalive_pool_size: 128
//
// A Config is a plain value; it is not safe to modify while a [Server] that uses it runs
// ([New] keeps its own copy).
type Config struct {
	// Version is the file format version. Zero (absent) and 1 are accepted.
	Version int `yaml:"version"`
	// Daemon runs the process in the background: [Server.Run] re-executes the binary
	// detached from the terminal and the original process returns. Also set by -d.
	Daemon bool `yaml:"daemon"`
	// ErrorLog is the file that receives the daemon's standard output and standard error
	// (and so the default slog output). Empty means /dev/null. Used only with Daemon.
	ErrorLog string `yaml:"error_log"`
	// PidFile is written with the process id once the listeners are bound and removed on
	// exit. Empty means no pid file.
	PidFile string `yaml:"pid_file"`
	// UpgradeSock is the Unix socket over which a new process takes the listening sockets
	// of the old one in a graceful upgrade (see package upgrade). Empty means
	// [DefaultUpgradeSock].
	UpgradeSock string `yaml:"upgrade_sock"`
	// UpgradeTimeoutSeconds bounds the waits of a graceful upgrade: how long a process
	// started with -u waits on UpgradeSock for the running one to hand over its
	// listeners, and how long the running one waits for the new one to serve before it
	// gives up and goes on serving. Zero means [DefaultUpgradeTimeout].
	UpgradeTimeoutSeconds int `yaml:"upgrade_timeout_seconds"`
	// User and Group are accepted for compatibility with Pingora files but switching user
	// is not supported yet: a non-empty value is a validation error. Start the process
	// as the intended user (systemd User=, or a container's USER).
	User string `yaml:"user"`
	// Group: see User.
	Group string `yaml:"group"`
	// Threads sets GOMAXPROCS when the server starts. Zero leaves the Go runtime's choice.
	Threads int `yaml:"threads"`
	// GracePeriodSeconds is the time, counted from a graceful shutdown or upgrade signal,
	// that long-lived streams (WebSocket and CONNECT tunnels, gRPC streams) keep running
	// before they are closed (see [StreamCloser]). In a graceful shutdown the listeners
	// also keep accepting for that long, so that a load balancer can take the process
	// out first; in an upgrade they stop as soon as the new process serves. Zero means
	// at once.
	GracePeriodSeconds int `yaml:"grace_period_seconds"`
	// GracefulShutdownTimeoutSeconds bounds how long in-flight requests may take to finish
	// in a graceful shutdown before their connections are closed. Zero means
	// [DefaultGracefulShutdownTimeout].
	GracefulShutdownTimeoutSeconds int `yaml:"graceful_shutdown_timeout_seconds"`
	// UpstreamKeepalivePoolSize is the number of idle upstream connections a service keeps
	// per peer. The server does not read it; services take it from here. Zero means the
	// service's default; -1 turns reuse off.
	UpstreamKeepalivePoolSize int `yaml:"upstream_keepalive_pool_size"`
	// MaxRetries is the number of times a service retries a failed upstream attempt that
	// is safe to retry. The server does not read it. Zero means the service's default;
	// -1 means no retries.
	MaxRetries int `yaml:"max_retries"`
	// CaFile is a PEM bundle of the roots trusted for upstream TLS. Empty means the system
	// roots. The server does not read it.
	CaFile string `yaml:"ca_file"`
	// ClientBindToIPv4 and ClientBindToIPv6 are local addresses upstream connections are
	// made from, one picked per connection. Empty means the kernel chooses. The server
	// does not read them.
	ClientBindToIPv4 []string `yaml:"client_bind_to_ipv4"`
	// ClientBindToIPv6: see ClientBindToIPv4.
	ClientBindToIPv6 []string `yaml:"client_bind_to_ipv6"`
}

// DefaultConfig returns the configuration used when none is given: version 1, no pid
// file, no daemon, [DefaultUpgradeSock] and [DefaultGracefulShutdownTimeout].
func DefaultConfig() *Config {
	return &Config{
		Version:                        1,
		UpgradeSock:                    DefaultUpgradeSock,
		GracefulShutdownTimeoutSeconds: int(DefaultGracefulShutdownTimeout / time.Second),
	}
}

// GracePeriod returns GracePeriodSeconds as a duration.
func (c *Config) GracePeriod() time.Duration {
	return time.Duration(c.GracePeriodSeconds) * time.Second
}

// UpgradeTimeout returns UpgradeTimeoutSeconds as a duration, or [DefaultUpgradeTimeout]
// if it is zero.
func (c *Config) UpgradeTimeout() time.Duration {
	if c.UpgradeTimeoutSeconds == 0 {
		return DefaultUpgradeTimeout
	}
	return time.Duration(c.UpgradeTimeoutSeconds) * time.Second
}

// GracefulShutdownTimeout returns GracefulShutdownTimeoutSeconds as a duration, or
// [DefaultGracefulShutdownTimeout] if it is zero.
func (c *Config) GracefulShutdownTimeout() time.Duration {
	if c.GracefulShutdownTimeoutSeconds == 0 {
		return DefaultGracefulShutdownTimeout
	}
	return time.Duration(c.GracefulShutdownTimeoutSeconds) * time.Second
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	cp := *c
	cp.ClientBindToIPv4 = append([]string(nil), c.ClientBindToIPv4...)
	cp.ClientBindToIPv6 = append([]string(nil), c.ClientBindToIPv6...)
	return &cp
}

// ErrUnknownKey is wrapped by the [ConfigError] for a key that [Config] does not have.
var ErrUnknownKey = errors.New("unknown key")

// ConfigError reports a problem in a configuration: a syntax error, an unknown key, a
// value of the wrong type or a value out of range. Several problems are joined with
// [errors.Join].
type ConfigError struct {
	// File is the name of the configuration source; empty for a Config built in code.
	File string
	// Line is the 1-based line of the problem in File; zero when unknown.
	Line int
	// Key is the YAML key at fault; empty for a syntax error.
	Key string
	// Err describes the problem; it is [ErrUnknownKey] for an unknown key.
	Err error
}

// Error returns the problem as "server: FILE:LINE: key \"KEY\": PROBLEM", leaving out the
// parts that are unknown; an unknown key reads `server: conf.yaml:3: unknown key "pid_fle"`.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("server: ")
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	default:
		b.WriteString("config: ")
	}
	if errors.Is(e.Err, ErrUnknownKey) {
		fmt.Fprintf(&b, "%v %q", e.Err, e.Key)
		return b.String()
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads the YAML configuration file at path over [DefaultConfig] and validates
// it. Unknown keys are errors. Errors are [*ConfigError] values (joined when several)
// naming the file, line and key, or an *os.PathError for a file that cannot be read.
func LoadConfig(path string) (*Config, error) {
	return loadConfigOver(DefaultConfig(), path, nil)
}

// LoadConfigWithApp is [LoadConfig] for a file that also holds the application's own
// keys: it decodes the file into the returned Config and into app, a non-nil pointer to
// the application's configuration struct (usually with yaml tags), over the values app
// already has. A top-level key is the server's if [Config] has it and the application's
// if app has it (a key both have goes to both); a key neither has is an error with its
// line, as is an unknown key inside one of app's nested structs. A value of the wrong
// type for one of app's keys is a [*ConfigError] naming the key (dotted for nested keys,
// "backend.port") and its line. [NewFromFlags] calls it with [Options.App].
func LoadConfigWithApp(path string, app any) (*Config, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	return loadConfigOver(DefaultConfig(), path, app)
}

// ParseConfigWithApp is [LoadConfigWithApp] reading from r; name (usually the file name)
// prefixes error messages.
func ParseConfigWithApp(r io.Reader, name string, app any) (*Config, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	return parseConfigOver(DefaultConfig(), r, name, app)
}

// checkApp reports an app configuration that cannot be decoded into.
func checkApp(app any) error {
	if v := reflect.ValueOf(app); v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("server: Options.App must be a non-nil pointer, got %T", app)
	}
	return nil
}

// loadConfigOver reads the file at path over base, and over app if not nil; see
// [LoadConfigWithApp].
func loadConfigOver(base *Config, path string, app any) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server: load config: %w", err)
	}
	defer f.Close()
	return parseConfigOver(base, f, path, app)
}

// ParseConfig reads a YAML configuration from r over [DefaultConfig] and validates it;
// name (usually the file name) prefixes error messages. See [LoadConfig].
func ParseConfig(r io.Reader, name string) (*Config, error) {
	return parseConfigOver(DefaultConfig(), r, name, nil)
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (.+) not found in type `)
	yamlUnmarshRE = regexp.MustCompile(`^cannot unmarshal (.*) into ([\w.\[\]]+)$`)
)

// parseConfigOver decodes r over base (which it modifies and returns), and over app if not
// nil, and validates the result.
func parseConfigOver(base *Config, r io.Reader, name string, app any) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("server: read config %s: %w", name, err)
	}
	if len(data) > maxConfigSize {
		return nil, &ConfigError{File: name, Err: fmt.Errorf("larger than %d bytes", maxConfigSize)}
	}
	lines, paths := keyLines(data)
	errs, syntax := decodeStrict(data, base, name, lines, paths)
	if app != nil && !syntax && lines != nil {
		appErrs, _ := decodeStrict(data, app, name, lines, paths)
		errs = mergeKeyErrors(errs, appErrs, lines)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := base.validate(name, lines); err != nil {
		return nil, err
	}
	return base, nil
}

// decodeStrict decodes data into v with unknown keys rejected and returns the problems as
// [*ConfigError] values; syntax reports a document that does not parse (or is not a
// mapping), for which decoding into anything else would only repeat the error.
func decodeStrict(data []byte, v any, name string, lines map[string]int, paths map[int]string) (errs []error, syntax bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil, false
	}
	var te *yaml.TypeError
	return yamlError(err, name, lines, paths), !errors.As(err, &te)
}

// mergeKeyErrors combines the problems found decoding one file into the server's Config
// (server) and into the application's struct (app): a top-level key unknown to one of
// them is a problem only if the other does not know it either, and is then reported
// once. The result is ordered by line.
func mergeKeyErrors(server, app []error, lines map[string]int) []error {
	topUnknown := func(err error) (string, bool) {
		var ce *ConfigError
		if errors.As(err, &ce) && errors.Is(ce.Err, ErrUnknownKey) && ce.Line > 0 && lines[ce.Key] == ce.Line {
			return ce.Key, true
		}
		return "", false
	}
	unknownToApp := map[string]bool{}
	for _, err := range app {
		if k, ok := topUnknown(err); ok {
			unknownToApp[k] = true
		}
	}
	var out []error
	for _, err := range server {
		if k, ok := topUnknown(err); ok && !unknownToApp[k] {
			continue // the application's key
		}
		out = append(out, err)
	}
	for _, err := range app {
		if _, ok := topUnknown(err); ok {
			continue // the server's key, or reported above
		}
		out = append(out, err)
	}
	slices.SortStableFunc(out, func(a, b error) int {
		var ca, cb *ConfigError
		errors.As(a, &ca)
		errors.As(b, &cb)
		if ca == nil || cb == nil {
			return 0
		}
		return ca.Line - cb.Line
	})
	return out
}

// keyLines maps each top-level key to its line, and the line of each key at any depth to
// its dotted path ("backend.port", "routes[1].prefix"). It returns nil maps when data does
// not parse or is not a mapping; the decoder then reports why.
func keyLines(data []byte) (lines map[string]int, paths map[int]string) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, nil
	}
	lines = make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		lines[m.Content[i].Value] = m.Content[i].Line
	}
	paths = map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + p
				}
				if _, ok := paths[k.Line]; !ok {
					paths[k.Line] = p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
	}
	walk(m, "")
	return lines, paths
}

// yamlError turns a decoding error into [*ConfigError] values with file, line and key.
func yamlError(err error, name string, lines map[string]int, paths map[int]string) []error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), yamlMultiLabel)}
	}
	errs := make([]error, 0, len(msgs))
	for _, msg := range msgs {
		ce := &ConfigError{File: name}
		msg = strings.TrimSpace(msg)
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			ce.Line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		switch {
		case yamlUnknownRE.MatchString(msg):
			ce.Key = yamlUnknownRE.FindStringSubmatch(msg)[1]
			if p := paths[ce.Line]; strings.HasSuffix(p, "."+ce.Key) {
				ce.Key = p // a nested key: name it with its parents
			}
			ce.Err = ErrUnknownKey
		default:
			if m := yamlUnmarshRE.FindStringSubmatch(msg); m != nil {
				if strings.HasSuffix(m[2], ".Config") {
					msg = "want a mapping of keys, got " + m[1]
				} else {
					msg = "want " + m[2] + ", got " + m[1]
				}
			}
			ce.Key = paths[ce.Line]
			if ce.Key == "" {
				ce.Key = keyAtLine(lines, ce.Line)
			}
			ce.Err = errors.New(strings.TrimPrefix(msg, "yaml: "))
		}
		errs = append(errs, ce)
	}
	return errs
}

// keyAtLine returns the top-level key whose value starts on line, or the nearest key
// above it, or "" if none.
func keyAtLine(lines map[string]int, line int) string {
	best, bestLine := "", 0
	for k, l := range lines {
		if l <= line && l > bestLine {
			best, bestLine = k, l
		}
	}
	return best
}

// Validate reports the first problems found in c as [*ConfigError] values joined with
// [errors.Join], each naming its YAML key; nil means c is usable.
func (c *Config) Validate() error { return c.validate("", nil) }

func (c *Config) validate(name string, lines map[string]int) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{File: name, Line: lines[key], Key: key, Err: fmt.Errorf(format, args...)})
	}
	if c.Version != 0 && c.Version != 1 {
		bad("version", "unsupported version %d (want 1)", c.Version)
	}
	nonNegative := []struct {
		key string
		v   int
	}{
		{"threads", c.Threads},
		{"grace_period_seconds", c.GracePeriodSeconds},
		{"graceful_shutdown_timeout_seconds", c.GracefulShutdownTimeoutSeconds},
		{"upgrade_timeout_seconds", c.UpgradeTimeoutSeconds},
	}
	for _, f := range nonNegative {
		if f.v < 0 {
			bad(f.key, "must not be negative, got %d", f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"upstream_keepalive_pool_size", c.UpstreamKeepalivePoolSize},
		{"max_retries", c.MaxRetries},
	} {
		if f.v < -1 {
			bad(f.key, "must be -1 (off) or more, got %d", f.v)
		}
	}
	if c.User != "" {
		bad("user", "switching user is not supported yet; start the process as %q instead", c.User)
	}
	if c.Group != "" {
		bad("group", "switching group is not supported yet; start the process as group %q instead", c.Group)
	}
	return errors.Join(errs...)
}

// yamlMultiLabel heads the message of a [yaml.TypeError].
const yamlMultiLabel = "yaml: unmarshal errors:"
