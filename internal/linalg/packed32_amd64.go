//go:build amd64 && !purego

package linalg

// stridedKernel32 returns kn's float32 kernel that reads A in place (rows
// of a row-major float32 matrix, see microKernel32S), or nil where kn has
// none.
func stridedKernel32(kn *kernelInfo) microKernel32S {
	switch kn {
	case avx512Kernel:
		return kernel12x32AVX512F32S
	case avx2Kernel:
		return kernel6x16AVX2F32S
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
