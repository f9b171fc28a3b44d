package sentry

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"

	sentrygo "github.com/getsentry/sentry-go"
)

// maxFrames bounds the frames an event carries (a deep recursion's stack is cut in the
// middle by Go already, which prints at most 100 frames of each end).
const maxFrames = 200

// stacktrace turns the text of a goroutine's stack, as runtime/debug.Stack prints it,
// into a Sentry stack trace of the frames that led to the panic: those above the
// newest panic call (the recovery's own frames, debug.Stack and the deferred function
// that called it, are left out when the stack shows a panic), without the runtime's,
// oldest first as Sentry wants them. It returns nil if it finds no frame.
func stacktrace(stack []byte) *sentrygo.Stacktrace {
	frames := parseStack(stack)
	for i, f := range frames {
		if f.Function == "panic" {
			frames = frames[i+1:]
			break
		}
	}
	out := make([]sentrygo.Frame, 0, len(frames))
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].Function == "panic" { // an older panic, which a deferred call interrupted
			continue
		}
		f := sentrygo.NewFrame(frames[i])
		if f.Module == "runtime" {
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil
	}
	return &sentrygo.Stacktrace{Frames: out}
}

// parseStack reads the frames of the first goroutine in stack, newest first, each
// with its function (without its arguments), file and line. Lines it does not
// recognise are skipped; "created by" frames are left out, as the goroutine's own
// frames end before them.
func parseStack(stack []byte) []runtime.Frame {
	var frames []runtime.Frame
	var fn string // the function whose location line comes next
	seen := false
	for len(stack) > 0 && len(frames) < maxFrames {
		var line []byte
		line, stack, _ = bytes.Cut(stack, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			if seen {
				return frames // the end of the first goroutine
			}
		case line[0] == '\t':
			if fn == "" {
				continue
			}
			file, ln, ok := location(string(line[1:]))
			if ok {
				frames = append(frames, runtime.Frame{Function: fn, File: file, Line: ln})
			}
			fn = ""
		case bytes.HasPrefix(line, []byte("goroutine ")):
			if seen {
				return frames
			}
			seen = true
			fn = ""
		case bytes.HasPrefix(line, []byte("created by ")):
			fn = ""
		default:
			seen = true
			fn = function(string(line))
		}
	}
	return frames
}

// function returns the function name of a frame's first line: the line without its
// argument list ("pkg.(*T).M(0xc000010000, {0x1, 0x2})" gives "pkg.(*T).M").
func function(line string) string {
	if !strings.HasSuffix(line, ")") {
		return strings.TrimSpace(line)
	}
	depth := 0
	for i := len(line) - 1; i >= 0; i-- {
		switch line[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return line[:i]
			}
		}
	}
	return line
}

// location parses a frame's second line without its tab: "/src/file.go:123 +0x1d"
// (the offset is absent for inlined frames).
func location(s string) (file string, line int, ok bool) {
	if i := strings.LastIndex(s, " +0x"); i >= 0 {
		s = s[:i]
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}
