//go:build amd64 && !purego

package linalg

// hasVecReLU reports whether BiasReLU32 runs groups of 8 in assembly.
var hasVecReLU = hasAVX512

// biasReLU32x8 is BiasReLU32 on n elements, n a positive multiple of 8,
// with AVX-512: sum, VMAXPD(0, sum) (which returns the sum where it is a
// NaN or a zero), sign bit cleared (so −0 and NaNs come out as Go's max
// gives them), VCVTPD2PS (round to nearest even, as Go's conversion).
//
//go:noescape
func biasReLU32x8(dst *float32, src, b *float64, n int)

// biasReLU64x8 is BiasReLU on n elements, n a positive multiple of 8,
// with AVX-512: biasReLU32x8 without the conversion.
//
//go:noescape
func biasReLU64x8(dst, src, b *float64, n int)
