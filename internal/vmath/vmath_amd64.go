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
	avx512Kernel = &kernel{name: "avx512", lanes: 8, exp: expAVX512, tanh: tanhVec(tanhAVX512)}
	avx2Kernel   = &kernel{name: "avx2", lanes: 4, exp: expAVX2, tanh: tanhVec(tanhAVX2)}
)

// tanhVec is the tanh kernel, or nil (the portable loop) in a build whose
// math.tanh the compiler fuses (GOAMD64=v3 and above, see tanhFused).
func tanhVec(k func(dst, src []float64) uint64) func(dst, src []float64) uint64 {
	if tanhFused {
		return nil
	}
	return k
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
