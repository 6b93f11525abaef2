package flows

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestBoundedEdges checks Bounded at the edges of float64 (issue 26): the
// log of a subnormal gap (amd64's math.Log is wrong there), gradients that
// are never NaN where 1/(x − lo) overflows, inverses that stay finite and
// strictly inside the bounds, and the round trip to 1e-13 of the gap plus
// two ulps of x for gaps from the smallest subnormal to MaxFloat64.
func TestBoundedEdges(t *testing.T) {
	const tiny = 5e-324
	maxf := math.MaxFloat64
	inf := math.Inf(1)
	if got, want := logSub(tiny), -1074*math.Ln2; math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Errorf("logSub(5e-324) = %v, want %v", got, want)
	}
	if got, want := logSub(3e-310), math.Log(3e-300)-10*math.Ln10; math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Errorf("logSub(3e-310) = %v, want %v", got, want)
	}
	cases := []struct {
		lo, hi float64
		xs     []float64
	}{
		{0, inf, []float64{tiny, 1e-310, 1e-300, 1, 1e300, maxf}},
		{-inf, 0, []float64{-tiny, -1e-310, -1, -maxf}},
		{1, inf, []float64{1 + 0x1p-52, 2, maxf}},
		{1e308, inf, []float64{1e308 + 1e300, maxf}},
		{0, 1, []float64{tiny, 1e-310, 0.5, 1 - 0x1p-53}},
		{-maxf, maxf, []float64{-maxf / 2, 0, 1e-300, maxf / 2, math.Nextafter(maxf, 0)}},
		{-1, 1e308, []float64{-1 + 0x1p-52, 0, 1e307, math.Nextafter(1e308, 0)}},
	}
	for _, c := range cases {
		_, bj, err := Bounded([]float64{c.lo}, []float64{c.hi})(NewKey(1), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range c.xs {
			xm := mat.NewDense(1, 1, []float64{x})
			z, ld, back := bj.DirectVJP(Params{}, xm, nil)
			y := z.At(0, 0)
			if !lmcFinite(y) || !lmcFinite(ld[0]) {
				t.Errorf("(%v, %v) x=%v: y=%v, log-det %v", c.lo, c.hi, x, y, ld[0])
				continue
			}
			for _, g := range [][2]float64{{0, 1}, {1, 0}, {1, 1}, {2, 2}, {-3, 5}} {
				dx := back(mat.NewDense(1, 1, []float64{g[0]}), []float64{g[1]}, Params{}, nil)
				if math.IsNaN(dx.At(0, 0)) {
					t.Errorf("(%v, %v) x=%v: gradient NaN for (gy, gl) = %v", c.lo, c.hi, x, g)
				}
			}
			xb, ild := bj.Inverse(Params{}, z, nil)
			xr := xb.At(0, 0)
			gap := math.Min(x/2-c.lo/2, c.hi/2-x/2) * 2
			ulp := math.Abs(math.Nextafter(x, 0) - x)
			if !(xr > c.lo && xr < c.hi) || math.Abs(xr-x) > 1e-13*gap+2*ulp {
				t.Errorf("(%v, %v) x=%v: y=%v, Inverse %v (off by %v)", c.lo, c.hi, x, y, xr, xr-x)
			}
			if math.Abs(ild[0]+ld[0]) > 1e-12*math.Max(1, math.Abs(ld[0])) {
				t.Errorf("(%v, %v) x=%v: log-det %v, inverse %v", c.lo, c.hi, x, ld[0], ild[0])
			}
		}
		// Far latent values still give x inside the bounds, finite.
		for _, y := range []float64{-1e4, -800, 800, 1e4} {
			xb, _ := bj.Inverse(Params{}, mat.NewDense(1, 1, []float64{y}), nil)
			if xr := xb.At(0, 0); !(xr > c.lo && xr < c.hi) || !lmcFinite(xr) {
				t.Errorf("(%v, %v): Inverse(%v) = %v, want finite and inside", c.lo, c.hi, y, xr)
			}
		}
	}
	// The one-sided case of the issue: log(5e-324) in full.
	_, bj, _ := Bounded([]float64{0}, []float64{inf})(NewKey(1), 1, 0)
	z, _ := bj.Direct(Params{}, mat.NewDense(1, 1, []float64{tiny}), nil)
	if y := z.At(0, 0); math.Abs(y+744.44) > 0.01 {
		t.Errorf("Bounded(0, +Inf) at 5e-324: y = %v, want −744.44", y)
	}
}
