//go:build !amd64 || purego

package vmath

// kernels lists the implementations this build runs, best first.
func kernels() []*kernel { return []*kernel{goKernel} }
