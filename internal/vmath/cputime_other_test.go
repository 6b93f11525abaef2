//go:build !unix

package vmath

// cpuNanos is 0 where getrusage is not available: cpu-ns/elem then reads 0.
func cpuNanos() int64 { return 0 }
