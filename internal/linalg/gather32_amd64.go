//go:build amd64 && !purego

package linalg

// copyRows32 sets dst[p·32 + j] = b[boff[p] + c0 + j] for j < 32, p <
// len(boff), with AVX (hasConvert); the caller checks the bounds.
//
//go:noescape
func copyRows32(dst []float32, b []float32, boff []int, c0 int)
