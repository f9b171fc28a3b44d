//go:build !unix

package limit

import (
	"testing"
	"time"
)

func cpuTime() time.Duration                  { return 0 }
func reportCPU(b *testing.B, _ time.Duration) {}
