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
