//go:build !unix

package linalg

// cpuNanos is 0 where getrusage is not available: cpu-ns/op then reads 0
// and the cpu-GFLOP/s metrics are not reported.
func cpuNanos() int64 { return 0 }
