//go:build !unix

package main

// cpuSeconds is 0 where getrusage is not available: progress.tsv's CPU
// columns then read 0.
func cpuSeconds() float64 { return 0 }
