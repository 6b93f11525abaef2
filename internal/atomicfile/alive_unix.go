//go:build unix

package atomicfile

import (
	"errors"
	"syscall"
)

// alive reports whether a process with the given id runs: signal 0 checks
// without sending anything. A process of another user counts as running.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
