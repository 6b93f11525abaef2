//go:build !unix

package linalg

// cpuNanos is 0 where getrusage is not available: the cpu-GFLOP/s metrics
// are then not reported.
func cpuNanos() int64 { return 0 }
