package prometheus_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves m's Handler on loopback, scrapes it once in the text format and parses
// what it got.
func scrape(t testing.TB, m *prometheus.Metrics) families {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return families{t, fams}
}

// families is a parsed scrape.
type families struct {
	t    testing.TB
	fams map[string]*dto.MetricFamily
}

// labels is "k=v,k=v" parsed.
func parseLabels(s string) map[string]string {
	l := map[string]string{}
	if s == "" {
		return l
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	return l
}

// find returns the metric of family name whose labels are exactly lbls ("k=v,k=v"),
// or nil.
func (f families) find(name, lbls string) *dto.Metric {
	want := parseLabels(lbls)
	fam := f.fams[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		ok := true
		for _, lp := range m.GetLabel() {
			if v, has := want[lp.GetName()]; !has || v != lp.GetValue() {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge, or the sample count of a histogram,
// failing the test if the series is missing.
func (f families) value(name, lbls string) float64 {
	f.t.Helper()
	m := f.find(name, lbls)
	if m == nil {
		f.t.Fatalf("no series %s{%s}; the family has:\n%s", name, lbls, f.series(name))
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	f.t.Fatalf("%s{%s} is neither a counter, a gauge nor a histogram", name, lbls)
	return 0
}

// expect checks the value of each series in want ("name{k=v,k=v}" to value).
func (f families) expect(want map[string]float64) {
	f.t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, lbls, _ := strings.Cut(strings.TrimSuffix(k, "}"), "{")
		if got := f.value(name, lbls); got != want[k] {
			f.t.Errorf("%s = %v, want %v; the family has:\n%s", k, got, want[k], f.series(name))
		}
	}
}

// count returns the number of series of family name.
func (f families) count(name string) int { return len(f.fams[name].GetMetric()) }

// series lists the series of family name, for failure messages.
func (f families) series(name string) string {
	var b strings.Builder
	for _, m := range f.fams[name].GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		v := 0.0
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		fmt.Fprintf(&b, "  {%s} %v\n", strings.Join(ls, ","), v)
	}
	return b.String()
}
