//go:build amd64 && !purego

package linalg

// reluConvert sets dst[i] = float32(|src[i]|) where src[i] > 0 or is a
// NaN, +0 elsewhere (float32(max(src[i], 0)) on amd64), with AVX
// (hasConvert), for len(src) a multiple of 4 and dst as long.
//
//go:noescape
func reluConvert(dst []float32, src []float64)
