package prometheus

import (
	"runtime"
	"runtime/debug"

	prom "github.com/prometheus/client_golang/prometheus"
)

// modulePath is the path of the Gotthard module, whose version build_info reports.
const modulePath = "github.com/gotthard-proxy/gotthard"

// newBuildInfo returns the collector of the build_info metric: 1, labeled with the
// version of the Gotthard module linked into the program and the Go version.
func newBuildInfo(ns string) prom.Collector {
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = moduleVersion(bi)
	}
	g := prom.NewGauge(prom.GaugeOpts{
		Namespace:   ns,
		Name:        "build_info",
		Help:        "1, labeled with the version of Gotthard in the program and the Go version that built it.",
		ConstLabels: prom.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// moduleVersion returns the version of the Gotthard module in bi: the main module's
// when the program is Gotthard's own ("(devel)" for a build from a work tree), or that
// of the dependency (its replacement's if replaced); "unknown" if it is in neither.
func moduleVersion(bi *debug.BuildInfo) string {
	if bi.Main.Path == modulePath {
		return orUnknown(bi.Main.Version)
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			return orUnknown(d.Version)
		}
	}
	return "unknown"
}
