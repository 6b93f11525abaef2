package linalg

import (
	"math"
	"testing"
)

// TestToF32 checks ToF32 against Go's conversion on every length up to 19
// (the vector loop's four at a time and each tail), on values whose
// rounding to float32 is a tie or not, infinities, NaN, zeros of both signs
// and float32's overflow and underflow.
func TestToF32(t *testing.T) {
	special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 1e39, -1e39, 1e-46, 1 + 0x1p-24, 1 + 3*0x1p-24, -(1 + 0x1p-24), math.Pi, math.MaxFloat32}
	for n := range 20 {
		src := make([]float64, n)
		for i := range src {
			src[i] = special[i%len(special)] * float64(1+i/len(special))
		}
		dst := make([]float32, n+1)
		dst[n] = 7
		ToF32(dst, src)
		for i, v := range src {
			if want := float32(v); math.Float32bits(dst[i]) != math.Float32bits(want) {
				t.Fatalf("n = %d: ToF32(%v) = %v, want %v", n, v, dst[i], want)
			}
		}
		if dst[n] != 7 {
			t.Fatalf("n = %d: ToF32 wrote past len(src)", n)
		}
	}
	nan := make([]float32, 1)
	if ToF32(nan, []float64{math.NaN()}); !math.IsNaN(float64(nan[0])) {
		t.Fatalf("ToF32(NaN) = %v", nan[0])
	}
}
