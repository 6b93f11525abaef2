//go:build amd64 && !purego

package linalg

// copyRows sets dst[p·w + j] = b[boff[p] + c0 + j] for j < w, p <
// len(boff), with AVX (hasConvert), for w a positive multiple of 8; the
// caller checks the bounds.
//
//go:noescape
func copyRows(dst []float32, w int, b []float32, boff []int, c0 int)

// copyRowsMask is copyRows with row p's w values ANDed with vec[class[p]·w:]
// (see packGatherMask); the caller checks the bounds and the classes.
//
//go:noescape
func copyRowsMask(dst []float32, w int, b []float32, boff []int, c0 int, class []int32, vec []uint32)
