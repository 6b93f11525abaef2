package flows

import (
	"math"
	"testing"
)

// TestConv32SameBits: the Float32 passes without col(X) (conv32.go) give
// the bits of the im2col route (conv.go's, the float32 product on col(X)
// and col(dY)), forward and backward, with and without dX, with the ReLU
// on the input applied while copying (act) and on a copy (then dX masked
// by it, per task or after the pass), on shapes that narrow (through
// col(dY)) and widen, filters of 1, 3 and 5, images down to one pixel
// wide, and batches of one task and of several with a short last one.
func TestConv32SameBits(t *testing.T) {
	for _, c := range []conv2d{
		{32, 32, 3, 14, 14, Float32}, {32, 4, 3, 7, 7, Float32}, {2, 32, 3, 14, 14, Float32},
		{4, 4, 3, 5, 6, Float32}, {3, 2, 1, 3, 3, Float32}, {2, 2, 5, 3, 4, Float32},
		{2, 1, 3, 2, 1, Float32}, {5, 3, 5, 4, 4, Float32}, {3, 3, 3, 1, 7, Float32},
	} {
		for _, n := range []int{1, 3, 23} {
			keys := NewKey(11).Split(4)
			wt, b := randSlice(keys[0], c.weights()), randSlice(keys[1], c.cout)
			x, dy := randSlice(keys[2], n*c.inWidth()), randSlice(keys[3], n*c.outWidth())
			run := func(im2col, wantDx, act bool) [][]float64 {
				defer func(v bool) { convIm2col32 = v }(convIm2col32)
				convIm2col32 = im2col
				dw, db := make([]float64, len(wt)), make([]float64, len(b))
				dx := c.backwardAct(wt, x, dy, n, dw, db, wantDx, act, act) // dX through the ReLU when act
				return [][]float64{c.forwardAct(wt, b, x, n, act), dx, dw, db}
			}
			for _, wantDx := range []bool{true, false} {
				for _, act := range []bool{false, true} {
					got, want := run(false, wantDx, act), run(true, wantDx, act)
					for r, name := range []string{"y", "dx", "dw", "db"} {
						if len(got[r]) != len(want[r]) {
							t.Fatalf("%+v n=%d: %s has %d entries, im2col's %d", c, n, name, len(got[r]), len(want[r]))
						}
						for j := range want[r] {
							if math.Float64bits(got[r][j]) != math.Float64bits(want[r][j]) {
								t.Fatalf("%+v n=%d wantDx=%v act=%v: %s[%d] = %v, im2col route %v", c, n, wantDx, act, name, j, got[r][j], want[r][j])
							}
						}
					}
				}
			}
		}
	}
}

// TestConv32AgainstLoop checks the Float32 forward pass against the
// float64 plain loop: GemmF32's bound (see gemm32.go) for a sum of kk =
// cin·k² products, kk ≤ 256 in one block, is (kk + 2)·2⁻²⁴·Σ|w·x| plus
// the bias's float64 rounding, and Σ|w·x| is the loop on |W| and |X|.
func TestConv32AgainstLoop(t *testing.T) {
	for _, c := range []conv2d{{2, 3, 3, 4, 5, Float32}, {4, 2, 3, 5, 3, Float32}, {3, 2, 1, 3, 3, Float32}, {2, 2, 5, 3, 4, Float32}, {1, 2, 5, 1, 2, Float32}, {2, 1, 3, 2, 1, Float32}} {
		const n = 3
		keys := NewKey(7).Split(3)
		wt, b := randSlice(keys[0], c.weights()), randSlice(keys[1], c.cout)
		x := randSlice(keys[2], n*c.inWidth())
		abs := func(s []float64) []float64 {
			a := make([]float64, len(s))
			for j, v := range s {
				a[j] = math.Abs(v)
			}
			return a
		}
		got, want := c.forward(wt, b, x, n), convLoop(c, wt, b, x, n)
		mag := convLoop(c, abs(wt), make([]float64, c.cout), abs(x), n)
		kk := float64(c.cin * c.k * c.k)
		for j := range want {
			tol := (kk+2)*0x1p-24*mag[j] + 0x1p-52*math.Abs(want[j])
			if math.Abs(got[j]-want[j]) > tol {
				t.Fatalf("%+v: forward[%d] = %v, loop %v (tolerance %v)", c, j, got[j], want[j], tol)
			}
		}
	}
}
