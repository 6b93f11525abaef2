//go:build !amd64 || purego

package vmath

// kernels lists the implementations this build runs, best first.
func kernels() []*kernel { return []*kernel{goKernel} }

// block is never called in this build: no kernel has vectors.
func block(k *kernel, fn int, dst, src []float64) uint64 {
	panic("flows: vmath: no vector kernels in this build")
}

// tanhExpBlock is never called in this build: no kernel has vectors.
func tanhExpBlock(k *kernel, h, e, src []float64, div, mul float64) uint64 {
	panic("flows: vmath: no vector kernels in this build")
}
