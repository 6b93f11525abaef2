package linalg

// BiasReLU32 sets dst[j] = float32(max(src[j]+b[j], 0)) for j <
// len(dst) (src and b at least as long), with the bits of that Go
// expression: a positive sum rounded to float32, +0 for a sum ≤ 0 (−0
// included), and a NaN sum with its sign bit cleared, rounded to float32
// (Go's max on amd64 gives NaN operands that sign). On AVX-512 CPUs
// whole groups of 8 run in assembly; the rest, and every element
// elsewhere, in Go (TestBiasReLU32 checks that they agree bit for bit).
func BiasReLU32(dst []float32, src, b []float64) { biasReLU(dst, src, b, biasReLU32x8) }

// BiasReLU sets dst[j] = max(src[j]+b[j], 0) for j < len(dst) (src and b
// at least as long; dst may be src), with the bits of that Go
// expression: BiasReLU32's before the rounding to float32.
func BiasReLU(dst, src, b []float64) { biasReLU(dst, src, b, biasReLU64x8) }

// biasReLU is BiasReLU32 and BiasReLU: vec, the assembly, on whole groups
// of 8 where the CPU has it, Go on the rest.
func biasReLU[T Float](dst []T, src, b []float64, vec func(dst *T, src, b *float64, n int)) {
	n := len(dst)
	src, b = src[:n], b[:n]
	j := 0
	if n8 := n &^ 7; n8 > 0 && hasVecReLU {
		vec(&dst[0], &src[0], &b[0], n8)
		j = n8
	}
	for ; j < n; j++ {
		dst[j] = T(max(src[j]+b[j], 0))
	}
}
