// Package h2spec runs the h2spec HTTP/2 conformance suite (github.com/summerwind/h2spec,
// a tool of this module) against a server on loopback, for the tests of internal/h2 and
// of examples/gateway.
package h2spec

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cases is the number of cases in the suite.
const Cases = 145

// Run runs the suite against 127.0.0.1:port (over TLS, not verifying the certificate,
// when useTLS) and fails t unless every case passes. It skips t if the tool cannot be
// built; H2SPEC names a prebuilt binary to use instead.
func Run(t *testing.T, port string, useTLS bool) {
	t.Helper()
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
	report := filepath.Join(t.TempDir(), "report.xml")
	// Each case waits up to 10 s for the frame it expects; no case waits that long when it
	// passes, and on a machine busy with the race detector and parallel test binaries a
	// 3 s wait once ran out.
	args := []string{"-h", "127.0.0.1", "-p", port, "-j", report, "-o", "10"}
	if useTLS {
		args = append(args, "-t", "-k")
	}
	out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	total, failed := parse(t, report)
	if total != Cases || len(failed) > 0 {
		t.Errorf("h2spec: %d cases, failed:\n%s\n\n%s", total, strings.Join(failed, "\n"), tail(out, 6000))
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// parse reads h2spec's JUnit report: the number of cases and the failed ones.
func parse(t *testing.T, path string) (total int, failed []string) {
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
