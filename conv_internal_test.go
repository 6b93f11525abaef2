package flows

import (
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows/internal/linalg"
)

// convLoop is the plain-loop convolution the im2col passes are checked
// against: y[o,y,x] = b_o + Σ_{ci,ky,kx} W[o,ci,ky,kx]·x[ci, y+ky−p, x+kx−p].
func convLoop(c conv2d, wt, b, x []float64, n int) []float64 {
	hw, p := c.h*c.w, c.k/2
	y := make([]float64, n*c.outWidth())
	for i := 0; i < n; i++ {
		for o := 0; o < c.cout; o++ {
			for yy := 0; yy < c.h; yy++ {
				for xx := 0; xx < c.w; xx++ {
					s := b[o]
					for ci := 0; ci < c.cin; ci++ {
						for ky := 0; ky < c.k; ky++ {
							for kx := 0; kx < c.k; kx++ {
								sy, sx := yy+ky-p, xx+kx-p
								if sy < 0 || sy >= c.h || sx < 0 || sx >= c.w {
									continue
								}
								s += wt[((o*c.cin+ci)*c.k+ky)*c.k+kx] * x[i*c.inWidth()+ci*hw+sy*c.w+sx]
							}
						}
					}
					y[i*c.outWidth()+o*hw+yy*c.w+xx] = s
				}
			}
		}
	}
	return y
}

func randSlice(key Key, n int) []float64 {
	r := key.Rand()
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

// TestConvAgainstLoop checks the forward pass against convLoop, and both
// backward passes against the loop's adjoint: ⟨dY, conv(X)⟩ is linear in X
// and in (W, b), so the gradients must equal the loop's values of
// ⟨dY, conv(e)⟩ on unit vectors e, which is what the transposed loop gives.
func TestConvAgainstLoop(t *testing.T) {
	for _, c := range []conv2d{{2, 3, 3, 4, 5, Float64}, {3, 2, 1, 3, 3, Float64}, {1, 4, 3, 1, 2, Float64}, {2, 2, 5, 3, 4, Float64}, {1, 2, 5, 1, 2, Float64}, {2, 1, 3, 2, 1, Float64}} {
		const n = 3
		keys := NewKey(7).Split(4)
		wt, b := randSlice(keys[0], c.weights()), randSlice(keys[1], c.cout)
		x, dy := randSlice(keys[2], n*c.inWidth()), randSlice(keys[3], n*c.outWidth())
		got, want := c.forward(wt, b, x, n), convLoop(c, wt, b, x, n)
		for j := range want {
			if math.Abs(got[j]-want[j]) > 1e-12*(1+math.Abs(want[j])) {
				t.Fatalf("%+v: forward[%d] = %v, loop %v", c, j, got[j], want[j])
			}
		}
		dw, db := make([]float64, len(wt)), make([]float64, len(b))
		dx := c.backward(wt, x, dy, n, dw, db, true)
		dot := func(y []float64) float64 {
			var s float64
			for j := range y {
				s += y[j] * dy[j]
			}
			return s
		}
		zeroB := make([]float64, len(b))
		// ⟨dY, conv(W, 0, X)⟩ is linear in X and in W separately.
		for j := range x {
			e := make([]float64, len(x))
			e[j] = 1
			if w := dot(convLoop(c, wt, zeroB, e, n)); math.Abs(dx[j]-w) > 1e-12*(1+math.Abs(w)) {
				t.Fatalf("%+v: dx[%d] = %v, loop %v", c, j, dx[j], w)
			}
		}
		for j := range wt {
			e := make([]float64, len(wt))
			e[j] = 1
			if w := dot(convLoop(c, e, zeroB, x, n)); math.Abs(dw[j]-w) > 1e-12*(1+math.Abs(w)) {
				t.Fatalf("%+v: dw[%d] = %v, loop %v", c, j, dw[j], w)
			}
		}
		for o := range b {
			e := make([]float64, len(b))
			e[o] = 1
			if w := dot(convLoop(c, make([]float64, len(wt)), e, x, n)); math.Abs(db[o]-w) > 1e-12*(1+math.Abs(w)) {
				t.Fatalf("%+v: db[%d] = %v, loop %v", c, o, db[o], w)
			}
		}
	}
}

// TestConvWorkersBitIdentical runs passes split into many tasks on one
// worker and on four and wants the same bits, in both precisions.
func TestConvWorkersBitIdentical(t *testing.T) {
	for _, prec := range []Precision{Float64, Float32} {
		convWorkersBitIdentical(t, conv2d{3, 4, 3, 6, 6, prec})
		convWorkersBitIdentical(t, conv2d{4, 3, 3, 6, 6, prec}) // through col(dY)
	}
}

func convWorkersBitIdentical(t *testing.T, c conv2d) {
	n := 1
	for per, tasks := c.tasks(n); tasks < 3 || n%per == 0; per, tasks = c.tasks(n) {
		n++ // at least three tasks, the last one short
	}
	keys := NewKey(3).Split(4)
	wt, b := randSlice(keys[0], c.weights()), randSlice(keys[1], c.cout)
	x, dy := randSlice(keys[2], n*c.inWidth()), randSlice(keys[3], n*c.outWidth())
	run := func(workers int) ([]float64, []float64, []float64, []float64) {
		defer linalg.SetWorkers(linalg.SetWorkers(workers))
		dw, db := make([]float64, len(wt)), make([]float64, len(b))
		dx := c.backward(wt, x, dy, n, dw, db, true)
		return c.forward(wt, b, x, n), dx, dw, db
	}
	y1, dx1, dw1, db1 := run(1)
	y4, dx4, dw4, db4 := run(4)
	for _, pair := range [][2][]float64{{y1, y4}, {dx1, dx4}, {dw1, dw4}, {db1, db4}} {
		for j := range pair[0] {
			if math.Float64bits(pair[0][j]) != math.Float64bits(pair[1][j]) {
				t.Fatalf("%v: entry %d differs between 1 and 4 workers: %v vs %v", c.prec, j, pair[0][j], pair[1][j])
			}
		}
	}
}

// rowSpans calls visit for every image row y of every row r = (ci, ky, kx)
// of col(X), with the source row sy = y + ky − k/2 and the columns
// [x0, x1) of row y that read inside the image (from column x + dx): the
// loops im2col and col2im were first written as, the references for their
// span copies. sy is outside [0, h) or x0 ≥ x1 where row y reads nothing.
func rowSpans(c conv2d, visit func(ci, r, y, sy, x0, x1, dx int)) {
	pad, r := c.k/2, 0
	for ci := 0; ci < c.cin; ci++ {
		for ky := 0; ky < c.k; ky++ {
			for kx := 0; kx < c.k; kx++ {
				dx := kx - pad
				x0, x1 := max(0, -dx), min(c.w, c.w-dx)
				for y := 0; y < c.h; y++ {
					visit(ci, r, y, y+ky-pad, x0, x1, dx)
				}
				r++
			}
		}
	}
}

// im2colRows is im2col one image row at a time.
func im2colRows(c conv2d, x, col []float64) {
	hw := c.h * c.w
	rowSpans(c, func(ci, r, y, sy, x0, x1, dx int) {
		row := col[r*hw+y*c.w : r*hw+(y+1)*c.w]
		if sy < 0 || sy >= c.h || x0 >= x1 {
			clear(row)
			return
		}
		clear(row[:x0])
		copy(row[x0:x1], x[ci*hw+sy*c.w+x0+dx:ci*hw+sy*c.w+x1+dx])
		clear(row[x1:])
	})
}

// col2imRows is col2im one image row at a time.
func col2imRows(c conv2d, col, dx []float64) {
	hw := c.h * c.w
	rowSpans(c, func(ci, r, y, sy, x0, x1, dxo int) {
		if sy < 0 || sy >= c.h || x0 >= x1 {
			return
		}
		d := dx[ci*hw+sy*c.w+x0+dxo : ci*hw+sy*c.w+x1+dxo]
		for j, v := range col[r*hw+y*c.w+x0 : r*hw+y*c.w+x1] {
			d[j] += v
		}
	})
}

// TestIm2colSpans checks the span copies against im2colRows on every
// shape up to 5×5 filters on 6×6 images, into a buffer full of NaN (as a
// pooled buffer may hold anything), bit for bit.
func TestIm2colSpans(t *testing.T) {
	for _, k := range []int{1, 3, 5} {
		for h := 1; h <= 6; h++ {
			for w := 1; w <= 6; w++ {
				c := conv2d{cin: 2, cout: 1, k: k, h: h, w: w}
				x := randSlice(NewKey(uint64(h*7+w)), c.inWidth())
				got, want := make([]float64, c.cin*k*k*h*w), make([]float64, c.cin*k*k*h*w)
				for i := range got {
					got[i] = math.NaN()
				}
				c.im2col(x, got, h*w)
				im2colRows(c, x, want)
				for i := range want {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("%+v: col[%d] = %v, want %v", c, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestCol2imSpans checks the span additions against col2imRows on every
// shape up to 5×5 filters on 6×6 images, bit for bit, with col's rows
// strided (as a task's images lie side by side) and NaN in the entries no
// pixel takes, which must not reach dx; among the values, zeros of both
// signs and exact cancellations, where a sign of zero could differ.
func TestCol2imSpans(t *testing.T) {
	for _, k := range []int{1, 3, 5} {
		for h := 1; h <= 6; h++ {
			for w := 1; w <= 6; w++ {
				c := conv2d{cin: 2, cout: 1, k: k, h: h, w: w}
				hw, rows := h*w, c.cin*k*k
				// col(e) of the all-ones image marks the entries that
				// belong to a pixel.
				ones := make([]float64, c.inWidth())
				for i := range ones {
					ones[i] = 1
				}
				mask := make([]float64, rows*hw)
				c.im2col(ones, mask, hw)
				r := NewKey(uint64(h*7 + w)).Rand()
				src := make([]float64, rows*hw)
				for i := range src {
					switch {
					case mask[i] == 0:
						src[i] = math.NaN()
					case r.IntN(4) == 0:
						src[i] = math.Copysign(0, -1)
					case r.IntN(4) == 0:
						src[i] = 1 // cancels with the −1 of another row
					case r.IntN(3) == 0:
						src[i] = -1
					default:
						src[i] = r.NormFloat64()
					}
				}
				const ld = 3 // col's row stride, in images
				strided := make([]float64, rows*ld*hw)
				for q := range rows {
					copy(strided[q*ld*hw+hw:], src[q*hw:(q+1)*hw])
				}
				ref := slices.Clone(src)
				for i := range ref {
					if mask[i] == 0 {
						ref[i] = 0 // the reference never reads them
					}
				}
				got, want := make([]float64, c.inWidth()), make([]float64, c.inWidth())
				c.col2im(strided[hw:], ld*hw, got)
				col2imRows(c, ref, want)
				for i := range want {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("%+v: dx[%d] = %v, want %v", c, i, got[i], want[i])
					}
				}
			}
		}
	}
}
