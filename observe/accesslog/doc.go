// Package accesslog writes access logs: one line per request, in the combined log
// format of Apache and nginx or as JSON, to a file that logrotate can rotate.
//
// A [Logger] is an observe.Observer: give it to a proxy service
// (proxy.ServiceOptions.Observers) and it writes each request's line at RequestEnd. It
// is also a server background service by its method set (Name, Run): add it to the
// server so that its buffer is flushed every second and SIGUSR1 reopens the file.
//
//	alog, err := accesslog.New(accesslog.Options{Path: "/var/log/gateway/access.log", Format: accesslog.Combined})
//	if err != nil {
//		return err
//	}
//	svc, err := proxy.NewService("gateway", app, proxy.ServiceOptions{Observers: []observe.Observer{alog}})
//	...
//	srv.Add(svc)
//	srv.Add(alog) // flushes every second, reopens on SIGUSR1, flushes and closes at shutdown
//
// # Formats
//
// [Combined] is the line Apache's "combined" LogFormat and nginx's default
// log_format write, so the tools that read those (goaccess, awstats, fail2ban, log
// shippers' nginx parsers) read it:
//
//	192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /a/b?x=1 HTTP/1.1" 200 5120 "https://example.com/start" "curl/8.11.0"
//
// The fields are the client's IP address, two "-" (identd and user, which a proxy does
// not know), the time the request arrived, the request line (method, target and
// protocol as the client sent them; HTTP/2 is "HTTP/2"), the status the client got,
// the body bytes sent to it, and the Referer and User-Agent fields. An empty value is
// "-", as are a status of 0 (no response was sent) and a body of 0 bytes (as Apache's
// %b writes it). Bytes are escaped as nginx escapes them: the control bytes, '"', '\',
// DEL and every byte from 0x80 up become \xHH (upper-case hex), so a line is printable
// ASCII, one line, and its quoted fields end at the first '"'. UTF-8 text is escaped
// too, byte by byte, as nginx does: "Grüße" is written Gr\xC3\xBC\xC3\x9Fe.
//
// [JSON] writes one object per line with the same fields in the same order, always
// all of them (a field without a value is "" or 0), so that a schema can be fixed:
//
//	time             the time the request arrived, RFC 3339 with milliseconds
//	service          the service's name
//	client           the client's IP address ("" on a Unix socket)
//	method, target   the request's method and request-target
//	proto            "HTTP/1.0", "HTTP/1.1" or "HTTP/2"
//	host             the Host field (":authority" over HTTP/2)
//	status           the status the client got (0 if none)
//	upstream_status  the status of the last response head a peer sent (0 if none)
//	upstream         the last attempt's peer address ("" if none)
//	bytes_sent       body bytes sent to the client
//	bytes_received   body bytes received from the client
//	duration_ms      from the request's arrival to the end of its response
//	ttfb_ms          from the request's arrival to the peer's response head (0 if none)
//	attempts         the number of attempts (retries are attempts-1)
//	reused           whether the last attempt used a pooled connection
//	error            the request's error ("" for success)
//	error_type       its kind, as proxy.ErrorType names it ("connection refused")
//	user_agent       the User-Agent field
//	referer          the Referer field
//
// Durations are milliseconds with three decimals (microseconds). Strings are escaped
// by the package's own appender, not encoding/json: '"' and '\' are escaped, control
// bytes and DEL are written as \n, \r, \t, \b, \f or \u00XX, U+2028 and U+2029 as
// \u2028 and \u2029, and other valid UTF-8 as it is. Each byte that is not part of
// valid UTF-8 is written as \ufffd, the replacement character, as encoding/json and
// log/slog write it: a JSON line is always valid JSON and valid UTF-8, and reads the
// same in any JSON decoder. The raw bytes are lost there; the combined format keeps
// them (as \xHH), for the rare case where they matter.
//
// Both formats write times in [Options.Location] (the local time zone by default, as
// nginx and Apache do). The time is when the request arrived, as Apache's %t is (nginx
// writes the time of the log instead); add duration_ms for its end.
//
// # Writing
//
// Lines are gathered in a buffer of [Options.BufferSize] (64 KiB) and written out when
// it is full, when its first line has waited [Options.FlushInterval] (one second: by
// [Logger.Run], or without it by the next line), and at [Logger.Flush] and
// [Logger.Close]. A line is written whole or not at all, and lines never interleave:
// each goes into the buffer whole, under a lock, and the output gets whole buffers.
// A line longer than the buffer is written on its own.
//
// The lock is held only to copy a line in; the write happens under a second lock, with
// a second buffer taking the lines meanwhile, so a request waits for I/O only when
// both buffers are full. It then waits for the write in progress up to
// [Options.WriteTimeout] (one second); past that the output is taken as stalled and
// lines are dropped without waiting, until a write completes. A write that fails (a
// full disk) costs the lines of that buffer; the next buffer is tried anew. Lost lines
// are counted ([Logger.Dropped], worth exporting as a metric); write errors are counted
// ([Logger.WriteErrors]) and logged to [Options.Logger] at most once a minute. A write
// that fails inside a line leaves that line cut, and the next write starts on a new
// line.
//
// # Rotation
//
// With [Options.Path], the file is opened for appending (O_APPEND, created with mode
// 0644 less the umask). logrotate moves it away and then signals the process;
// [Logger.Run] reopens the file on SIGUSR1, as nginx does, after writing what was
// buffered to the old one, so no line is lost and the lines after the reopen go to a
// new file by the old name. [Logger.Reopen] does the same when called. A logrotate
// configuration for it:
//
//	/var/log/gateway/access.log {
//		daily
//		rotate 14
//		compress
//		delaycompress
//		missingok
//		notifempty
//		postrotate
//			kill -USR1 $(cat /run/gateway.pid)
//		endscript
//	}
//
// (delaycompress leaves the newest old file uncompressed, since lines may still reach
// it until the signal has been handled.) copytruncate is not needed.
//
// # Cost
//
// A line allocates nothing in steady state (a request that failed pays for its error's
// Error method). It is formatted outside any lock, into a pooled buffer grown once to a
// bound computed from the lengths of its fields (a byte of a string escapes to at most 6
// bytes in JSON, 4 in the combined format; a line that would need more than 16 KiB so
// is bounded by its bytes to escape instead) and then filled without appends: strings are
// tested and copied 8 bytes at a time (a string of up to 16 bytes with none to escape,
// as most of a line's are, costs one or two loads, a test and one or two stores),
// numbers are written two digits at a time, and the time is copied from the text of its
// second, made once a second, with the milliseconds written in. The line is then copied
// into the shared buffer under a short lock, and written out with the rest of the
// buffer, one write per 64 KiB. See BenchmarkLine, and BenchmarkFormat against
// BenchmarkFormatReference: the simple formatters, a byte and a field at a time, that
// the tests check the lines against byte for byte.
//
// When not to use it: to send request logs to syslog or a log pipeline as structured
// records, write them from the Logging phase through an slog.Logger (observe/syslog);
// this package is for the file an operator tails, rotates and feeds to log tools.
package accesslog
