package vmath

import (
	"fmt"
	"math"
	"testing"
)

// tanhExpWant is TanhExp's definition for one element, written apart from
// its code: non-finite v replaced, then math's tanh and exp.
func tanhExpWant(v, div, mul float64) (float64, float64) {
	switch {
	case math.IsNaN(v):
		v = 0
	case math.IsInf(v, 1):
		v = math.MaxFloat64
	case math.IsInf(v, -1):
		v = -math.MaxFloat64
	}
	h := math.Tanh(v / div)
	return h, math.Exp(mul * h)
}

// tanhExpArgs are the (div, mul) pairs of the tests: the affine bound
// forward and inverse (3), quotients that overflow (0.5, 1e-300) or are
// NaN (div 0, NaN), products outside exp's kernel range (800, −1000) and
// NaN.
var tanhExpArgs = [][2]float64{{3, -3}, {3, 3}, {0.5, 2}, {1e-300, 1}, {1000, -1000}, {3, 800},
	{0, 1}, {math.NaN(), 1}, {3, math.NaN()}, {math.Inf(1), 2}}

// checkTanhExp compares h and e with tanhExpWant of src, bit for bit.
func checkTanhExp(t *testing.T, src, h, e []float64, div, mul float64) {
	t.Helper()
	bad := 0
	for i, v := range src {
		wh, we := tanhExpWant(v, div, mul)
		if math.Float64bits(h[i]) != math.Float64bits(wh) || math.Float64bits(e[i]) != math.Float64bits(we) {
			if bad++; bad <= 5 {
				t.Errorf("TanhExp(%v [%#x], div %v, mul %v) = %v, %v; want %v, %v", v, math.Float64bits(v), div, mul, h[i], e[i], wh, we)
			}
		}
	}
	if bad > 0 {
		t.Errorf("TanhExp div %v mul %v: %d of %d elements differ", div, mul, bad, len(src))
	}
}

// TestTanhExpBits checks TanhExp on TestBits's inputs for every pair of
// arguments and kernel, out of place and in place (h = src).
func TestTanhExpBits(t *testing.T) {
	xs := inputs(testSize() / 10)
	eachKernel(t, func(t *testing.T) {
		for _, a := range tanhExpArgs {
			h, e := make([]float64, len(xs)), make([]float64, len(xs))
			TanhExp(h, e, xs, a[0], a[1])
			checkTanhExp(t, xs, h, e, a[0], a[1])
			in := append([]float64(nil), xs...)
			TanhExp(in, e, in, a[0], a[1])
			checkTanhExp(t, xs, in, e, a[0], a[1])
		}
	})
}

// TestTanhExpLanes puts a special value in each lane of a block, at every
// length up to 67 and every offset below 9 (tails, unaligned starts), and
// checks that nothing outside h and e is written.
func TestTanhExpLanes(t *testing.T) {
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e308, -1e308, math.Copysign(0, -1), 0.3}
	eachKernel(t, func(t *testing.T) {
		for _, s := range specials {
			for n := 1; n <= 67; n++ {
				for off := 0; off < 9; off += 4 {
					src := make([]float64, n+off)[off:]
					for i := range src {
						src[i] = 0.37*float64(i) - 11
					}
					src[(n*7+off)%n] = s
					hb, eb := make([]float64, n+off+2), make([]float64, n+off+2)
					for i := range hb {
						hb[i], eb[i] = -7, -7
					}
					TanhExp(hb[off:off+n], eb[off:off+n], src, 3, -3)
					checkTanhExp(t, src, hb[off:off+n], eb[off:off+n], 3, -3)
					for i := range hb {
						if (i < off || i >= off+n) && (hb[i] != -7 || eb[i] != -7) {
							t.Fatalf("n=%d off=%d: wrote element %d outside h or e", n, off, i)
						}
					}
				}
			}
		}
	})
}

// TestTanhExpShort: a short h or e panics.
func TestTanhExpShort(t *testing.T) {
	for _, short := range []string{"h", "e"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("TanhExp with a short %s did not panic", short)
				}
			}()
			h, e := make([]float64, 4), make([]float64, 4)
			if short == "h" {
				h = h[:3]
			} else {
				e = e[:3]
			}
			TanhExp(h, e, make([]float64, 4), 3, 3)
		}()
	}
}

// BenchmarkTanhExp times TanhExp on 128 elements (MAF's 16 rows of 8
// columns) against Tanh and Exp with the division and the product as
// loops, per kernel, on raw log-scales in [−4, 4] (range=wide: most
// vectors have a lane past tanh's threshold 0.625·3) and in [−1, 1]
// (range=small: none has).
func BenchmarkTanhExp(b *testing.B) {
	for _, r := range []float64{4, 1} {
		src := make([]float64, 128)
		for i := range src {
			src[i] = r * math.Sin(float64(i)*0.7)
		}
		b.Run(fmt.Sprintf("range=%v", map[float64]string{4: "wide", 1: "small"}[r]), func(b *testing.B) { benchTanhExp(b, src) })
	}
}

func benchTanhExp(b *testing.B, src []float64) {
	h, e := make([]float64, 128), make([]float64, 128)
	eachKernelB(b, func(b *testing.B) {
		b.Run("fn=TanhExp", func(b *testing.B) {
			perElem(b, 128, func() { TanhExp(h, e, src, 3, -3) })
		})
		b.Run("fn=loops", func(b *testing.B) {
			perElem(b, 128, func() {
				for i, v := range src {
					h[i] = v / 3
				}
				Tanh(h, h)
				for i, v := range h {
					e[i] = -3 * v
				}
				Exp(e, e)
			})
		})
	})
}

// TestTanhExpSmall: blocks whose quotients are all below 0.625 in
// magnitude (the kernel skips tanh's exp branch for such a vector), and
// the same with one lane at or beyond the threshold, or special, at each
// position (the vector must not skip).
func TestTanhExpSmall(t *testing.T) {
	const div = 3
	mid := 0.625 * div
	lanes := []float64{0, mid, -mid, math.Nextafter(mid, 0), math.Nextafter(mid, 10), 5, -40, math.NaN(), math.Inf(1)}
	eachKernel(t, func(t *testing.T) {
		for _, s := range lanes {
			for pos := -1; pos < 64; pos++ { // −1: every lane small
				src := make([]float64, 64)
				for i := range src {
					src[i] = math.Mod((0.0297*float64(i)-0.93)*div, mid*0.999) // |src/div| < 0.625
				}
				if pos >= 0 {
					src[pos] = s
				}
				h, e := make([]float64, 64), make([]float64, 64)
				TanhExp(h, e, src, div, -div)
				checkTanhExp(t, src, h, e, div, -div)
			}
		}
	})
}
