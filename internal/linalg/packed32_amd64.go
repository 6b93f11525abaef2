//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// narrowKernel32 is the float32 kernel of 12×8 tiles (AVX-512 on 256-bit
// registers) that PackB32 packs at most 8 columns for: a float32-only
// kernel (no float64 form), used by Packed32 alone.
var narrowKernel32 = &kernelInfo{name: "avx512n8", mr32: 12, nr32: 8, fn32: kernel12x8AVX512F32}

// hasAVX512VL reports AVX-512's 256-bit forms (the narrow kernel's
// embedded broadcasts on Y registers).
var hasAVX512VL = hasAVX512 && cpu.X86.HasAVX512VL

// packKernel32 returns the kernel PackB32 packs n columns for: the narrow
// kernel for n ≤ 8 on an AVX-512 CPU with AVX-512VL (the AVX2 kernel's 16
// columns would be half padding, its 6×16 tiles no faster per FMA), else
// pickKernel's for a block of mcMax rows; a forced kernel (KernelEnv)
// always.
func packKernel32(n int) *kernelInfo {
	if n <= 8 && defaultKernel == avx512Kernel && !forced && hasAVX512VL {
		return narrowKernel32
	}
	return pickKernel(mcMax, n, true)
}

// stridedKernel32 returns kn's float32 kernel that reads A in place (rows
// of a row-major float32 matrix, see microKernel32S), or nil where kn has
// none.
func stridedKernel32(kn *kernelInfo) microKernel32S {
	switch kn {
	case avx512Kernel:
		return kernel12x32AVX512F32S
	case avx2Kernel:
		return kernel6x16AVX2F32S
	case narrowKernel32:
		return kernel12x8AVX512F32S
	}
	return nil
}

// reluKernels32 returns kn's float32 kernels with a bias and ReLU in their
// update (A packed, A in place), or nils where kn has none: the AVX-512
// kernel's, which need what BiasReLU32's assembly needs.
func reluKernels32(kn *kernelInfo) (microKernel32R, microKernel32SR) {
	if kn == avx512Kernel && hasVecReLU {
		return kernel12x32AVX512F32R, kernel12x32AVX512F32SR
	}
	return nil, nil
}
