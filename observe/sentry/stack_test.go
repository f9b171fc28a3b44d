package sentry

import (
	"runtime/debug"
	"strings"
	"testing"
)

// A stack as Go prints it, with an inlined frame, a nested panic, a runtime frame,
// a second goroutine and a "created by" line.
const printedStack = `goroutine 7 [running]:
runtime/debug.Stack()
	/usr/local/go/src/runtime/debug/stack.go:26 +0x5e
example.com/app/proxy.(*conn[...]).serveRequest.func1()
	/src/app/proxy/conn.go:45 +0x4e
panic({0x4bb840?, 0xc000012345?})
	/usr/local/go/src/runtime/panic.go:860 +0x13a
example.com/app.(*Gateway).cleanup(0xc000010000)
	/src/app/gateway.go:12 +0x25
panic({0x4bb840?, 0xc000054321?})
	/usr/local/go/src/runtime/panic.go:860 +0x13a
example.com/app.explode(...)
	/src/app/gateway.go:30
example.com/app.(*Gateway).RequestFilter(0xc000010000, {0x5a1c20, 0xc0000a0000}, 0xc0000b0000)
	/src/app/gateway.go:40 +0x1d
runtime.goexit({})
	/usr/local/go/src/runtime/asm_amd64.s:1700 +0x1
created by example.com/app/proxy.(*Service).serve in goroutine 1
	/src/app/proxy/service.go:99 +0x2f

goroutine 8 [chan receive]:
example.com/app.other()
	/src/app/other.go:1 +0x1
`

func TestParseStack(t *testing.T) {
	frames := parseStack([]byte(printedStack))
	want := []string{
		"runtime/debug.Stack /usr/local/go/src/runtime/debug/stack.go 26",
		"example.com/app/proxy.(*conn[...]).serveRequest.func1 /src/app/proxy/conn.go 45",
		"panic /usr/local/go/src/runtime/panic.go 860",
		"example.com/app.(*Gateway).cleanup /src/app/gateway.go 12",
		"panic /usr/local/go/src/runtime/panic.go 860",
		"example.com/app.explode /src/app/gateway.go 30",
		"example.com/app.(*Gateway).RequestFilter /src/app/gateway.go 40",
		"runtime.goexit /usr/local/go/src/runtime/asm_amd64.s 1700",
	}
	var got []string
	for _, f := range frames {
		got = append(got, f.Function+" "+f.File+" "+itoa(f.Line))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestStacktrace(t *testing.T) {
	st := stacktrace([]byte(printedStack))
	if st == nil {
		t.Fatal("no stack trace")
	}
	// Oldest first; what ran after the newest panic and the runtime's frames are left
	// out; the frames between the two panics (a deferred function that panicked while
	// the first panic ran) are kept, since the second panic is the value recovered.
	var got []string
	for _, f := range st.Frames {
		got = append(got, f.Module+" "+f.Function)
	}
	want := []string{
		"example.com/app (*Gateway).RequestFilter",
		"example.com/app explode",
		"example.com/app (*Gateway).cleanup",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	last := st.Frames[len(st.Frames)-1]
	if last.AbsPath != "/src/app/gateway.go" || last.Lineno != 12 {
		t.Errorf("innermost frame %+v", last)
	}
}

func TestStacktraceReal(t *testing.T) {
	_, stack := panicking()
	st := stacktrace(stack)
	if st == nil {
		t.Fatalf("no stack trace from\n%s", stack)
	}
	fs := st.Frames
	if fs[len(fs)-1].Function != "explode" || !strings.HasSuffix(fs[len(fs)-2].Function, "panicking.func1") {
		t.Errorf("innermost frames %+v, %+v", fs[len(fs)-2], fs[len(fs)-1])
	}
}

func TestStacktraceWithoutPanic(t *testing.T) {
	// A stack taken where no panic ran keeps every frame but the runtime's.
	st := stacktrace(debug.Stack())
	if st == nil {
		t.Fatal("no stack trace")
	}
	last := st.Frames[len(st.Frames)-1]
	if last.Module != "runtime/debug" || last.Function != "Stack" {
		t.Errorf("innermost frame %+v", last)
	}
}

func TestStacktraceGarbage(t *testing.T) {
	for _, s := range []string{"", "\n\n", "goroutine 1 [running]:\n", "no frames here", "f()\n\tfile.go:x +0x1\n", "\tfile.go:1\n"} {
		if st := stacktrace([]byte(s)); st != nil {
			t.Errorf("stacktrace(%q) = %+v; want nil", s, st)
		}
	}
}

func FuzzStacktrace(f *testing.F) {
	f.Add([]byte(printedStack))
	_, stack := panicking()
	f.Add(stack)
	f.Add([]byte("f(((\n\t:1 +0x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames := parseStack(b)
		if len(frames) > maxFrames {
			t.Fatalf("%d frames", len(frames))
		}
		for _, fr := range frames {
			if fr.Line < 0 {
				t.Fatalf("line %d", fr.Line)
			}
		}
		stacktrace(b)
	})
}
