//go:build !unix

package linalg

// cpuNanos is 0 where getrusage is not available: cpu-ns/op then reads 0.
func cpuNanos() int64 { return 0 }
