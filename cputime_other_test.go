//go:build !unix

package flows_test

// cpuNanos is 0 where getrusage is not available: the cpu-ns/op metric
// then reads 0.
func cpuNanos() int64 { return 0 }
