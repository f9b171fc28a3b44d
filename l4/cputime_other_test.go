//go:build !unix

package l4

import "time"

// cpuTime returns 0: the benchmark then reports no CPU figure.
func cpuTime() time.Duration { return 0 }
