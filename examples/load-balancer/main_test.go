package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo plays the scripted demo: no client request fails while an origin dies and
// comes back.
func TestDemo(t *testing.T) {
	for _, algo := range []string{"round-robin", "ewma"} {
		t.Run(algo, func(t *testing.T) {
			var out syncBuffer
			if err := run([]string{"-demo", "-listen", "127.0.0.1:0", "-lb", algo}, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := out.String()
			t.Log("\n" + got)
			for _, want := range []string{"is down (active-check)", "is up", "Done: 0 client requests failed."} {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}
