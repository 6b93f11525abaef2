package linalg

// ToF32 sets dst[i] = float32(src[i]) (rounded to nearest, ties to even,
// as Go's conversion) for i < len(src), with the AVX conversion of the
// float32 packing (convertPanel) where it runs. It panics if dst is
// shorter than src.
func ToF32(dst []float32, src []float64) {
	dst = dst[:len(src)]
	if hasConvert && len(src) > 0 {
		convertPanel(dst, len(src), src, len(src), len(src), 1)
		return
	}
	for i, v := range src {
		dst[i] = float32(v)
	}
}
