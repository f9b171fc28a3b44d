package h2

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestH2Spec runs the h2spec conformance suite (RFC 7540/9113 and RFC 7541, 145
// cases) against a server in this test binary, over h2c with prior knowledge and over
// TLS with ALPN h2. Every case must pass.
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
	for _, tc := range []struct {
		name string
		tls  bool
	}{
		{name: "h2c", tls: false},
		{name: "tls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conf *tls.Config
			if tc.tls {
				conf = testTLSConfig(t)
			}
			srv := startServer(t, Options{}, echoHandler, conf)
			_, port, _ := strings.Cut(srv.addr(), ":")
			report := filepath.Join(t.TempDir(), "report.xml")
			args := []string{"-h", "127.0.0.1", "-p", port, "-j", report, "-o", "3"}
			if tc.tls {
				args = append(args, "-t", "-k")
			}
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			if err != nil {
				t.Logf("h2spec: %v", err)
			}
			total, failed := parseJUnit(t, report)
			t.Logf("h2spec %s: %d of %d passed; h2spec says: %s", tc.name, total-len(failed), total, lastLine(out))
			if len(failed) > 0 || total != 145 {
				t.Errorf("h2spec %s: %d cases, failed:\n%s\n\n%s", tc.name, total, strings.Join(failed, "\n"), tail(out, 6000))
			}
		})
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func parseJUnit(t *testing.T, path string) (total int, failed []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v", err)
	}
	var r struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Package   string    `xml:"package,attr"`
				ClassName string    `xml:"classname,attr"`
				Failure   *struct{} `xml:"failure"`
				Error     *struct{} `xml:"error"`
				Skipped   *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			total++
			if c.Failure != nil || c.Error != nil || c.Skipped != nil {
				failed = append(failed, c.Package+" "+s.Name+" #"+strconv.Itoa(i+1)+": "+c.ClassName)
			}
		}
	}
	return total, failed
}
