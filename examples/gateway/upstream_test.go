package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// -upstream-proto h2c and h2 speak HTTP/2 to the origin, whatever the client speaks.
func TestUpstreamProto(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin saw "+r.Proto)
	})
	h2c := httptest.NewUnstartedServer(handler)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c.Config.Protocols = &p
	h2c.Start()
	defer h2c.Close()
	h2 := httptest.NewUnstartedServer(handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"h2c", []string{"-upstream", strings.TrimPrefix(h2c.URL, "http://"), "-upstream-proto", "h2c"}},
		{"h2", []string{"-upstream", strings.TrimPrefix(h2.URL, "https://"), "-upstream-proto", "h2", "-upstream-skip-verify-dangerous"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			gw := startGateway(t, append([]string{"-listen", addr}, tc.args...)...)
			gw.waitAccepting(t, addr)
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "origin saw HTTP/2.0" {
				t.Fatalf("%d %q\n%s", resp.StatusCode, b, gw.stderr.String())
			}
		})
	}
	out, err := exec.Command(binary, "-upstream-proto", "h3").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "upstream-proto") {
		t.Fatalf("-upstream-proto h3: %v %s", err, out)
	}
}
