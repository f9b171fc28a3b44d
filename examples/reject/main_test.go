package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "reject", &binary) }

// startBinary runs the command in front of upstream and waits until it accepts; it is
// killed when the test ends.
func startBinary(t *testing.T, upstream string, args ...string) string {
	t.Helper()
	return exampletest.Listen(t, binary, append([]string{"-upstream", upstream}, args...)...)
}

func TestReject(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "from origin")
	}))
	defer origin.Close()
	addr := startBinary(t, strings.TrimPrefix(origin.URL, "http://"), "-key", "k3y")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct {
		name    string
		key     string
		status  int
		body    string
		reached bool
	}{
		{"no key", "", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"wrong key", "nope", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"prefix of the key", "k3", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"right key", "k3y", 200, "from origin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			if tt.key != "" {
				req.Header.Set("X-Api-Key", tt.key)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(b) != tt.body {
				t.Fatalf("got %d %q", resp.StatusCode, b)
			}
			mu.Lock()
			defer mu.Unlock()
			if reached := len(seen) > before; reached != tt.reached {
				t.Fatalf("reached the origin: %v, want %v", reached, tt.reached)
			}
			if tt.reached && seen[len(seen)-1].Get("X-Api-Key") != "" {
				t.Fatalf("the key was forwarded to the origin")
			}
		})
	}
}
