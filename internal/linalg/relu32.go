package linalg

// ReLUToF32 sets dst[i] = float32(max(src[i], 0)) for i < len(src), as Go
// computes it (a NaN stays a NaN, its sign cleared; −0 becomes +0), with AVX where it runs:
// a ReLU'd input rounded for the float32 products, without the branches
// that Go's max costs on data of either sign. It panics if dst is shorter
// than src.
func ReLUToF32(dst []float32, src []float64) {
	dst = dst[:len(src)]
	i := 0
	if hasConvert {
		i = len(src) &^ 3
		reluConvert(dst[:i], src[:i])
	}
	for ; i < len(src); i++ {
		dst[i] = float32(max(src[i], 0))
	}
}
