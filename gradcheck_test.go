package flows_test

// Test helpers shared by the spline and mixture coupling tests: gradient
// checks fine enough for steep maps, parameter perturbation, finiteness
// checks and row selection.

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// fineGradCheck compares the pullback of f at (p, x), for
// L = Σ dz∘f(x) + Σ dl∘logDet, with Richardson-extrapolated central
// differences R(h) = (4·C(h/2) − C(h))/3, in which the h² truncation term
// of the central difference C cancels. Where the map is nearly flat the
// inverse's derivatives grow like 1/y′ⁿ and no single step suits every
// entry: a coarse step leaves truncation error, a fine one rounding error
// (≈ δL/h, where δL, the noise of the loss, is dominated by the inverse:
// where the map's slope is e^{−10} the root is determined only to
// ~eps·|z|·e^{10} ≈ 1e-11 by the rounding of the map itself). So R is taken
// at h = 1e-3, …, 1e-9 (times max(1, |v|)) and the analytic value must
// match the closest of them to 1e-5 absolute plus 1e-5 relative. A wrong term, an error of the order of the gradient, matches
// none of them. Every input, and up to 200 parameters drawn at random, are
// checked.
func fineGradCheck(t *testing.T, what string, f func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64), vjp func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback), p flows.Params, x *mat.Dense) {
	t.Helper()
	n, dim := x.Dims()
	dz := nsfNormal(flows.NewKey(4), n, dim, 1)
	dl := make([]float64, n)
	rng := flows.NewKey(5).Rand()
	for i := range dl {
		dl[i] = rng.NormFloat64()
	}
	loss := func(p flows.Params, x *mat.Dense) float64 {
		z, ld := f(p, x, nil)
		s := 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				s += z.At(i, j) * dz.At(i, j)
			}
			s += ld[i] * dl[i]
		}
		return s
	}
	_, _, back := vjp(p, x, nil)
	dp := make(flows.Params, len(p))
	dx := back(dz, dl, dp, nil)
	xs := mat.DenseCopyOf(x)
	p = slices.Clone(p)
	// closest returns the extrapolated difference nearest to a.
	closest := func(a float64, set func(float64), v float64) float64 {
		c := func(h float64) float64 {
			set(v + h)
			lp := loss(p, xs)
			set(v - h)
			lm := loss(p, xs)
			set(v)
			return (lp - lm) / (2 * h)
		}
		best := math.Inf(1)
		for _, h := range []float64{1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9} {
			h *= max(1, math.Abs(v))
			if r := (4*c(h/2) - c(h)) / 3; math.Abs(r-a) < math.Abs(best-a) {
				best = r
			}
		}
		return best
	}
	bad := 0
	report := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-5+1e-5*math.Abs(want) {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s = %.10g, extrapolated differences %.10g", what, name, got, want)
			}
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			want := closest(dx.At(i, j), func(v float64) { xs.Set(i, j, v) }, xs.At(i, j))
			report(fmt.Sprintf("d/dx[%d,%d]", i, j), dx.At(i, j), want)
		}
	}
	ks := flows.NewKey(6).Rand().Perm(len(p))
	for _, k := range ks[:min(len(ks), 200)] {
		want := closest(dp[k], func(v float64) { p[k] = v }, p[k])
		report(fmt.Sprintf("d/dparams[%d]", k), dp[k], want)
	}
}

// perturbBy returns a Perturb function adding N(0, sd²) to every
// parameter.
func perturbBy(sd float64) func(flows.Key, flows.Params) flows.Params {
	return func(key flows.Key, p flows.Params) flows.Params {
		rng := key.Rand()
		q := slices.Clone(p)
		for i := range q {
			q[i] += sd * rng.NormFloat64()
		}
		return q
	}
}

// finiteMat fails t unless every entry of m and v is finite.
func finiteMat(t *testing.T, what string, m *mat.Dense, v []float64) {
	t.Helper()
	r, c := m.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if x := m.At(i, j); math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s: entry [%d,%d] is %v", what, i, j, x)
			}
		}
	}
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("%s: vector entry %d is %v", what, i, x)
		}
	}
}

// rowsWithin returns the rows of x whose columns [a, b) are all within
// ±limit.
func rowsWithin(x *mat.Dense, a, b int, limit float64) *mat.Dense {
	n, dim := x.Dims()
	var rows []float64
	for r := 0; r < n; r++ {
		ok := true
		for j := a; j < b; j++ {
			ok = ok && math.Abs(x.At(r, j)) <= limit
		}
		if ok {
			rows = append(rows, x.RawRowView(r)...)
		}
	}
	return mat.NewDense(len(rows)/dim, dim, rows)
}
