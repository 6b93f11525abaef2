package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBiasReLU32: BiasReLU32 gives float32(max(src+b, 0)), and BiasReLU
// max(src+b, 0), bit for bit on
// every length up to 40 (the assembly's groups of 8 and the Go tail), on
// sums that are positive, negative, ±0, ±Inf, NaNs of both signs, beyond
// float32's range, and float32 ties.
func TestBiasReLU32(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(),
		math.Float64frombits(0xfff8000000000001), 1e300, -1e300, 1 + 0x1p-24, 1 + 3*0x1p-24, 0x1p-149, -0x1p-149, 0x1p-160}
	for n := range 41 {
		for trial := range 20 {
			src, b := make([]float64, n), make([]float64, n)
			for j := range src {
				src[j] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-4))
				if trial%2 == 1 && rng.IntN(3) == 0 {
					src[j], b[j] = special[rng.IntN(len(special))], 0
					continue
				}
				b[j] = rng.NormFloat64()
			}
			got := make([]float32, n)
			BiasReLU32(got, src, b)
			got64 := make([]float64, n)
			BiasReLU(got64, src, b)
			for j := range got {
				want := float32(max(src[j]+b[j], 0))
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("n=%d: element %d of %v + %v: %v (%#x), want %v (%#x)", n, j, src[j], b[j], got[j], math.Float32bits(got[j]), want, math.Float32bits(want))
				}
				want64 := max(src[j]+b[j], 0)
				if math.Float64bits(got64[j]) != math.Float64bits(want64) {
					t.Fatalf("BiasReLU, n=%d: element %d of %v + %v: %v (%#x), want %v (%#x)", n, j, src[j], b[j], got64[j], math.Float64bits(got64[j]), want64, math.Float64bits(want64))
				}
			}
		}
	}
}
