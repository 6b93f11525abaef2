//go:build !amd64 || purego

package linalg

// hasVecReLU reports whether BiasReLU32 runs groups of 8 in assembly:
// never in this build.
const hasVecReLU = false

// biasReLU32x8 is never called in this build.
func biasReLU32x8(dst *float32, src, b *float64, n int) {
	panic("linalg: biasReLU32x8 without assembly")
}

// biasReLU64x8 is never called in this build.
func biasReLU64x8(dst, src, b *float64, n int) {
	panic("linalg: biasReLU64x8 without assembly")
}
