//go:build amd64 && !purego

package vmath

import "golang.org/x/sys/cpu"

// The vector kernels need FMA3 (the Go runtime's math.Exp takes its FMA
// path exactly when the CPU has AVX and FMA; without them it takes the
// other path, and so do Exp and Tanh here, through the portable loops).
var (
	hasFMA    = cpu.X86.HasAVX && cpu.X86.HasFMA
	hasAVX512 = hasFMA && cpu.X86.HasAVX512F
	hasAVX2   = hasFMA && cpu.X86.HasAVX2
)

var (
	avx512Kernel = &kernel{name: "avx512", lanes: 8, exp: true, tanh: !tanhFused}
	avx2Kernel   = &kernel{name: "avx2", lanes: 4, exp: true, tanh: !tanhFused}
)

// tanhFused (fused_*.go) turns the tanh kernels off in builds whose
// math.tanh the compiler fuses (GOAMD64=v3 and above).

// block runs k's kernel for fn on one block (see asm/asm.go).
func block(k *kernel, fn int, dst, src []float64) uint64 {
	switch {
	case k == avx512Kernel && fn == fnExp:
		return expAVX512(dst, src)
	case k == avx512Kernel:
		return tanhAVX512(dst, src)
	case fn == fnExp:
		return expAVX2(dst, src)
	}
	return tanhAVX2(dst, src)
}

// tanhExpBlock runs k's tanh-exp kernel on one block (see asm/asm.go).
func tanhExpBlock(k *kernel, h, e, src []float64, div, mul float64) uint64 {
	if k == avx512Kernel {
		return tanhExpAVX512(h, e, src, div, mul)
	}
	return tanhExpAVX2(h, e, src, div, mul)
}

// kernels lists the implementations this CPU runs, best first.
func kernels() []*kernel {
	var ks []*kernel
	if hasAVX512 {
		ks = append(ks, avx512Kernel)
	}
	if hasAVX2 {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}
