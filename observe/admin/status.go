package admin

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Status is the document /status.json serves. Each field is the JSON field its tag
// names, whose meaning the package doc's schema gives.
type Status struct {
	GeneratedAt   time.Time           `json:"generated_at"`
	StartedAt     time.Time           `json:"started_at"`
	UptimeSeconds float64             `json:"uptime_seconds"`
	Version       Version             `json:"version"`
	Services      []ServiceStatus     `json:"services"`
	Balancers     []BalancerStatus    `json:"balancers"`
	Certificates  []CertificateStatus `json:"certificates"`
	HealthEvents  []HealthEvent       `json:"health_events"`
}

// Version is the program's build, from runtime/debug.ReadBuildInfo. Each field is the
// JSON field its tag names, whose meaning the package doc's schema gives.
type Version struct {
	Program     string `json:"program"`
	Version     string `json:"version"`
	Gotthard    string `json:"gotthard"`
	GoVersion   string `json:"go_version"`
	VCSRevision string `json:"vcs_revision"`
	VCSTime     string `json:"vcs_time"`
	VCSModified bool   `json:"vcs_modified"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
}

// ServiceStatus is one service's entry in [Status]. Each field is the JSON field its
// tag names, whose meaning the package doc's schema gives.
type ServiceStatus struct {
	Name                  string            `json:"name"`
	Listeners             []string          `json:"listeners"`
	RequestsTotal         uint64            `json:"requests_total"`
	ByClass               map[string]uint64 `json:"by_class"`
	ErrorsTotal           uint64            `json:"errors_total"`
	InFlight              int64             `json:"in_flight"`
	Connections           int64             `json:"connections"`
	ConnectionsTotal      uint64            `json:"connections_total"`
	TLSFailures           uint64            `json:"tls_failures_total"`
	UpstreamConnections   uint64            `json:"upstream_connections_total"`
	UpstreamConnectErrors uint64            `json:"upstream_connect_errors_total"`
	AttemptsReused        uint64            `json:"attempts_reused"`
	AttemptsNew           uint64            `json:"attempts_new"`
	ReuseRatio            float64           `json:"reuse_ratio"`
	RetriesTotal          uint64            `json:"retries_total"`
	BytesSent             uint64            `json:"bytes_sent"`
	BytesReceived         uint64            `json:"bytes_received"`
	RPS10s                float64           `json:"rps_10s"`
	RPS1m                 float64           `json:"rps_1m"`
	ErrorRate10s          float64           `json:"error_rate_10s"`
	ErrorRate1m           float64           `json:"error_rate_1m"`
	P50ms                 float64           `json:"p50_ms"`
	P90ms                 float64           `json:"p90_ms"`
	P99ms                 float64           `json:"p99_ms"`
	LatencySamples        uint64            `json:"latency_samples"`
}

// BalancerStatus is one balancer's entry in [Status]. Each field is the JSON field its
// tag names, whose meaning the package doc's schema gives.
type BalancerStatus struct {
	Name     string          `json:"name"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend's entry in [BalancerStatus]. Each field is the JSON
// field its tag names, whose meaning the package doc's schema gives.
type BackendStatus struct {
	Addr      string  `json:"addr"`
	Weight    int     `json:"weight"`
	Healthy   bool    `json:"healthy"`
	Ejected   bool    `json:"ejected"`
	Available bool    `json:"available"`
	InFlight  int64   `json:"in_flight"`
	EWMAms    float64 `json:"ewma_ms"`
}

// CertificateStatus is one certificate's entry in [Status]: the leaf's public facts, never
// its key. Each field is the JSON field its tag names, whose meaning the package doc
// gives.
type CertificateStatus struct {
	Source    string    `json:"source"`
	Subject   string    `json:"subject_cn"`
	SANs      []string  `json:"sans"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  float64   `json:"days_left"`
	Error     string    `json:"error,omitempty"`
}

// CertificateSource is a named set of certificates for the status page: a TLS
// listener's, say. Certificates is called on each /status.json request, so it sees
// reloads; it must be safe for concurrent use and must not block.
type CertificateSource struct {
	// Name identifies the source on the page ("gateway-tls").
	Name string
	// Certificates returns the certificates to show; only each one's leaf is read.
	Certificates func() []*tls.Certificate
}

// readVersion reads the build information once.
func readVersion(program string) Version {
	v := Version{Version: program, OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.GoVersion = bi.GoVersion
	v.Program = bi.Path
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if bi.Main.Path == modulePath {
		v.Gotthard = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			v.Gotthard = d.Version
			if d.Replace != nil {
				v.Gotthard = d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.VCSRevision = s.Value
		case "vcs.time":
			v.VCSTime = s.Value
		case "vcs.modified":
			v.VCSModified = s.Value == "true"
		}
	}
	return v
}

const modulePath = "github.com/gotthard-proxy/gotthard"

// round keeps 3 decimals: the page shows no more, and the JSON stays short.
func round(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*1e3) / 1e3
}

// status builds the document at now.
func (s *Service) status(now time.Time) *Status {
	st := &Status{
		GeneratedAt:   now.UTC(),
		StartedAt:     s.start.UTC(),
		UptimeSeconds: round(now.Sub(s.start).Seconds()),
		Version:       s.version,
		Services:      []ServiceStatus{},
		Balancers:     []BalancerStatus{},
		Certificates:  []CertificateStatus{},
		HealthEvents:  []HealthEvent{},
	}
	var listeners map[string][]string
	if s.opts.Listeners != nil {
		listeners = s.opts.Listeners()
	}
	seen := map[string]bool{}
	if s.opts.Stats != nil {
		st.HealthEvents = s.opts.Stats.HealthEvents()
		for _, ss := range s.opts.Stats.Snapshot() {
			seen[ss.Name] = true
			st.Services = append(st.Services, serviceOf(&ss, listeners[ss.Name]))
		}
	}
	for name, addrs := range listeners {
		if !seen[name] {
			st.Services = append(st.Services, serviceOf(&ServiceStats{Name: name}, addrs))
		}
	}
	slices.SortFunc(st.Services, func(x, y ServiceStatus) int { return strings.Compare(x.Name, y.Name) })

	var backends []observe.Backend
	for _, b := range s.opts.Balancers {
		backends = b.AppendBackends(backends[:0])
		e := BalancerStatus{Name: b.Name(), Backends: make([]BackendStatus, 0, len(backends))}
		for _, be := range backends {
			e.Backends = append(e.Backends, BackendStatus{
				Addr: be.Addr, Weight: be.Weight, Healthy: be.Healthy, Ejected: be.Ejected,
				Available: be.Available, InFlight: be.InFlight,
				EWMAms: round(float64(be.Latency) / float64(time.Millisecond)),
			})
		}
		st.Balancers = append(st.Balancers, e)
	}

	for _, src := range s.opts.Certificates {
		if src.Certificates == nil {
			continue
		}
		for _, c := range src.Certificates() {
			if c != nil {
				st.Certificates = append(st.Certificates, certificateOf(src.Name, c, now))
			}
		}
	}
	return st
}

func serviceOf(ss *ServiceStats, listeners []string) ServiceStatus {
	if listeners == nil {
		listeners = []string{}
	}
	return ServiceStatus{
		Name:      ss.Name,
		Listeners: slices.Clone(listeners),
		ByClass: map[string]uint64{
			"1xx": ss.ByClass.C1xx, "2xx": ss.ByClass.C2xx, "3xx": ss.ByClass.C3xx,
			"4xx": ss.ByClass.C4xx, "5xx": ss.ByClass.C5xx, "other": ss.ByClass.Other,
		},
		RequestsTotal:         ss.Requests,
		ErrorsTotal:           ss.Errors,
		InFlight:              ss.InFlight,
		Connections:           ss.Connections,
		ConnectionsTotal:      ss.ConnectionsTotal,
		TLSFailures:           ss.TLSFailures,
		UpstreamConnections:   ss.UpstreamConns,
		UpstreamConnectErrors: ss.UpstreamConnErrs,
		AttemptsReused:        ss.Reused,
		AttemptsNew:           ss.New,
		ReuseRatio:            round(ss.ReuseRatio()),
		RetriesTotal:          ss.Retries,
		BytesSent:             ss.BytesSent,
		BytesReceived:         ss.BytesReceived,
		RPS10s:                round(ss.RPS10s),
		RPS1m:                 round(ss.RPS1m),
		ErrorRate10s:          round(ss.ErrorRate10s),
		ErrorRate1m:           round(ss.ErrorRate1m),
		P50ms:                 round(ss.P50ms),
		P90ms:                 round(ss.P90ms),
		P99ms:                 round(ss.P99ms),
		LatencySamples:        ss.LatencySamples,
	}
}

// certificateOf describes c's leaf: its names, issuer and validity, nothing of its key.
func certificateOf(source string, c *tls.Certificate, now time.Time) CertificateStatus {
	out := CertificateStatus{Source: source, SANs: []string{}}
	leaf := c.Leaf
	if leaf == nil {
		if len(c.Certificate) == 0 {
			out.Error = "no certificate"
			return out
		}
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			out.Error = err.Error()
			return out
		}
	}
	out.Subject = leaf.Subject.CommonName
	out.SANs = append(out.SANs, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out.SANs = append(out.SANs, ip.String())
	}
	for _, u := range leaf.URIs {
		out.SANs = append(out.SANs, u.String())
	}
	out.SANs = append(out.SANs, leaf.EmailAddresses...)
	out.Issuer = leaf.Issuer.CommonName
	if out.Issuer == "" {
		out.Issuer = leaf.Issuer.String()
	}
	if leaf.SerialNumber != nil {
		out.Serial = leaf.SerialNumber.Text(16)
	}
	out.NotBefore = leaf.NotBefore.UTC()
	out.NotAfter = leaf.NotAfter.UTC()
	out.DaysLeft = math.Round(leaf.NotAfter.Sub(now).Hours()/24*10) / 10
	return out
}
