package linalg

import (
	"math"
	"testing"
)

// TestReLUToF32: every element is Go's float32(max(v, 0)), bit for bit,
// on quiet and signalling NaNs of either sign, ±0, ±Inf, values that round and the tail past a
// multiple of 4, at every length up to 13.
func TestReLUToF32(t *testing.T) {
	special := []float64{math.NaN(), math.Copysign(math.NaN(), -1), 0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1),
		1e-300, -1e-300, 0.1, -0.1, 3.4e38, 1e39, -2.5, math.SmallestNonzeroFloat64,
		math.Float64frombits(0x7ff4000000000003), math.Float64frombits(0xfff4000000000003)} // signalling NaNs with payloads
	for n := range 14 {
		for off := range special {
			src := make([]float64, n)
			for i := range src {
				src[i] = special[(off+i)%len(special)]
			}
			dst := make([]float32, n)
			ReLUToF32(dst, src)
			for i, v := range src {
				if want := float32(max(v, 0)); math.Float32bits(dst[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d: ReLUToF32(%v) = %v (bits %#x), want %v (bits %#x)", n, v, dst[i], math.Float32bits(dst[i]), want, math.Float32bits(want))
				}
			}
		}
	}
}
