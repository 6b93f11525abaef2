package flows

import (
	"testing"

	"github.com/gonormflows/flows/internal/linalg"
)

// BenchmarkConvForward compares a 3×3 convolution's forward pass (32 to 32
// channels, 14×14, 64 images) with one product of the same size, the bound
// im2col could reach if its copies were free.
func BenchmarkConvForward(b *testing.B) {
	c := conv2d{32, 32, 3, 14, 14, Float64}
	const n = 64
	wt, bias := randSlice(NewKey(1), c.weights()), randSlice(NewKey(2), c.cout)
	x := randSlice(NewKey(3), n*c.inWidth())
	b.Run("conv", func(b *testing.B) {
		for b.Loop() {
			c.forward(wt, bias, x, n)
		}
	})
	b.Run("gemm", func(b *testing.B) {
		col := randSlice(NewKey(4), c.cin*9*c.h*c.w*n)
		y := make([]float64, n*c.outWidth())
		for b.Loop() {
			linalg.Gemm(false, false, c.cout, n*c.h*c.w, c.cin*9, 1, wt, col, 0, y)
		}
	})
}
