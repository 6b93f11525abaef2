//go:build !amd64 || purego

package linalg

// rowKernelUsable reports whether Packed may use a row kernel: never in
// this build.
func rowKernelUsable() bool { return false }

// rowKernelInfo returns the row kernel: none in this build.
func rowKernelInfo() *kernelInfo { return nil }

// restKernels lists the kernels besides the default for the last rows of a
// Packed product: none in this build.
func restKernels() []*kernelInfo { return nil }

// weight is the cost of one padded multiply-add on kn: 1 in this build.
func (kn *kernelInfo) weight() int { return 1 }
