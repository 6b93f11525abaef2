//go:build amd64 && !purego

package linalg

// rowKernelUsable reports whether Packed may run rows on the 1×64 row
// kernel: on AVX-512 CPUs, unless a kernel is forced (KernelEnv), which
// then runs every row.
func rowKernelUsable() bool { return defaultKernel == avx512Kernel && !forced }

// rowKernelInfo returns the row kernel.
func rowKernelInfo() *kernelInfo { return rowKernel }

// restKernels lists the kernels besides the default that may run the last
// rows of a Packed product (see Packed.restKernel).
func restKernels() []*kernelInfo {
	if !rowKernelUsable() {
		return nil
	}
	if hasAVX2 {
		return []*kernelInfo{rowKernel, avx2Kernel}
	}
	return []*kernelInfo{rowKernel}
}

// weight is the cost of one padded multiply-add on kn relative to the
// default kernel's: 2 for the 256-bit kernel on an AVX-512 CPU, and for
// the row kernel, which loads a row of B per 8 FMAs where the 12×16
// kernel loads one per 24 (measured: about half the 12×16 kernel's rate
// on a block of 128 rows on Zen 4); else 1.
func (kn *kernelInfo) weight() int {
	if (kn == avx2Kernel || kn == rowKernel) && defaultKernel == avx512Kernel {
		return 2
	}
	return 1
}
