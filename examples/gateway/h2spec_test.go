package main

import (
	"context"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// TestH2Spec runs the h2spec conformance suite (145 cases of RFC 9113 and RFC 7541)
// against the gateway as a user runs it: its plain listener (h2c by prior knowledge,
// shared with HTTP/1.1) and its TLS listener (h2 by ALPN), in front of the demo origin.
// Every case must pass on both.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a while")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := os.Getenv("H2SPEC")
	if bin == "" {
		out, err := exec.CommandContext(ctx, "go", "tool", "-n", "h2spec").Output()
		if err != nil {
			t.Skipf("cannot build h2spec: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	plain, secure := freeAddr(t), freeAddr(t)
	p := startGateway(t, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key)
	for _, addr := range []string{plain, secure} {
		waitFor(t, "the gateway to accept on "+addr, 10*time.Second, func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
	}
	for _, tc := range []struct {
		name string
		addr string
		tls  bool
	}{{"h2c", plain, false}, {"tls", secure, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, port, _ := strings.Cut(tc.addr, ":")
			report := filepath.Join(dir, tc.name+".xml")
			args := []string{"-h", "127.0.0.1", "-p", port, "-j", report, "-o", "3"}
			if tc.tls {
				args = append(args, "-t", "-k")
			}
			out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			total, failed := junit(t, report)
			if total != 145 || len(failed) > 0 {
				t.Errorf("h2spec %s: %d cases, failed: %v\n%s\ngateway stderr:\n%s", tc.name, total, failed, out, p.stderr.String())
			}
		})
	}
}

// junit reads h2spec's JUnit report: the number of cases and the names of the failed.
func junit(t *testing.T, path string) (int, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no h2spec report: %v", err)
	}
	var r struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Class   string    `xml:"classname,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	total := 0
	var failed []string
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			total++
			if c.Failure != nil || c.Error != nil || c.Skipped != nil {
				failed = append(failed, c.Class+": "+c.Name)
			}
		}
	}
	return total, failed
}
