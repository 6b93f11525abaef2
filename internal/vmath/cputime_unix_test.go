//go:build unix

package vmath

import "syscall"

// cpuNanos returns the CPU time this process has used (user and system,
// all threads), in nanoseconds: on a shared machine it counts the work a
// benchmark did, not the time it waited for a core.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
