//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// The assembly kernels (generated into kernel_amd64.s by asm/asm.go).
var (
	avx512Kernel = &kernelInfo{name: "avx512", mr: 12, nr: 16, fn: kernel12x16AVX512,
		mr32: 12, nr32: 32, fn32: kernel12x32AVX512F32}
	avx2Kernel = &kernelInfo{name: "avx2", mr: 6, nr: 8, fn: kernel6x8AVX2,
		mr32: 6, nr32: 16, fn32: kernel6x16AVX2F32}
	// rowKernel is for float64 products of one row of c (see pickKernel);
	// it has no float32 form.
	rowKernel = &kernelInfo{name: "avx512row", mr: 1, nr: 64, fn: kernel1x64AVX512}
)

// hasAVX512, hasAVX2 report what the CPU and the OS support (x/sys/cpu
// checks CPUID and, through XGETBV, that the OS saves the vector state).
var (
	hasAVX512 = cpu.X86.HasAVX512F
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// hasConvert reports that convertPanel (AVX) may run.
var hasConvert = cpu.X86.HasAVX

func init() {
	switch {
	case hasAVX512:
		defaultKernel = avx512Kernel
	case hasAVX2:
		defaultKernel = avx2Kernel
	default:
		defaultKernel = goKernel
	}
	forceKernel(kernels())
}

// kernels lists the kernels this CPU runs, best first (for tests).
func kernels() []*kernelInfo {
	var ks []*kernelInfo
	if hasAVX512 {
		ks = append(ks, avx512Kernel, rowKernel)
	}
	if hasAVX2 {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}

// pickKernel chooses the kernel for an m×n product (in float32 when f32).
// On an AVX-512 CPU the AVX2 kernel is used when padding c to its tiles
// costs at most half as many multiply-adds as padding to the AVX-512
// kernel's (6×8 against 12×16 tiles: n ≤ 8, or m ≤ 6, say; 6×16 against
// 12×32 in float32):
// it is as fast per FMA on CPUs that split 512-bit FMAs in two (AMD Zen 4)
// and no worse than the wasted padding on CPUs that do not. Both kernels
// give bit-identical results, so the choice never changes c. A float64
// product of one row of c (a scoring call of one row) takes the 1×64
// AVX-512 kernel, where a 12×16 or 6×8 tile would be mostly padding.
func pickKernel(m, n int, f32 bool) *kernelInfo {
	if defaultKernel == avx512Kernel && !forced && m == 1 && !f32 {
		return rowKernel
	}
	mr2, nr2 := avx2Kernel.tile(f32)
	mr5, nr5 := avx512Kernel.tile(f32)
	if defaultKernel == avx512Kernel && !forced && hasAVX2 &&
		2*roundUp(m, mr2)*roundUp(n, nr2) <= roundUp(m, mr5)*roundUp(n, nr5) {
		return avx2Kernel
	}
	return defaultKernel
}

// roundUp rounds n up to a multiple of mult.
func roundUp(n, mult int) int { return blocks(n, mult) * mult }
