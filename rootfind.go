package flows

// Bracketed, safeguarded root finding for the numerical inverses of the
// monotone maps added with the neural autoregressive, polynomial and
// classic VI families (BNAF, SumOfSquares, Bernstein, Planar, Radial): the
// algorithm of the logistic mixture's solver (mixture.go), for a map whose
// bracket is not known in closed form. Both refine with rtsafe below.
//
// Given g(x) = f(x) − z for a continuous, non-decreasing f with its
// derivative, and a start x0:
//
//  1. Bracket. g(x0) gives the side of the root; steps away from x0 grow
//     16-fold from the Newton step at x0 (or max(1, |x0|)·2⁻²⁰ when that is
//     not usable) until g changes sign, at most rootMaxExpand of them,
//     which reach ±MaxFloat64 from any start. A known end (lo or hi
//     finite) is used instead of searching on that side. When g has not
//     changed sign at ±MaxFloat64 the root is beyond float64 and that end
//     is returned.
//  2. Refine by Newton's method safeguarded by bisection (rtsafe): a Newton
//     step is taken when it stays inside the bracket and is at most half
//     the step before last, else the bracket is bisected (lmixMid: in
//     absolute terms on [−1, 1], in the ordering of float64 values beyond,
//     so 63 bisections shrink any bracket below the tolerance).
//  3. Stop when the bracket is narrower than rootTol·max(1, x_min), x_min
//     the smallest |x| in it (a guaranteed bound), when a Newton
//     correction is within that and a second evaluation at the corrected
//     point confirms it (g changes sign there or its correction is within
//     the tolerance too), or after rootMaxIter iterations.
//
// So an inversion evaluates f at most 1 + rootMaxExpand + 2·rootMaxIter + 1
// times (in practice a handful) and, the cap aside, returns x within
// rootTol·max(1, |x*|) of a root x*.

import "math"

// Limits of solveIncreasing.
const (
	// rootTol is the tolerance on x, relative to max(1, |x|).
	rootTol = 1e-13
	// rootMaxIter caps the Newton/bisection iterations.
	rootMaxIter = 100
	// rootMaxExpand caps the bracket expansions; 16-fold steps from
	// 2⁻²⁰·max(1, |x0|), even from the smallest Newton step, reach
	// MaxFloat64 within it.
	rootMaxExpand = 280
)

// rootFunc returns g(x) = f(x) − z and f′(x) ≥ 0 for a non-decreasing f.
type rootFunc func(x float64) (g, slope float64)

// solveIncreasing returns a root of g (see the file's notes) and the number
// of evaluations, starting from x0 (finite) within [lo, hi] (lo < hi; an
// infinite end means unknown, to be searched for). A NaN z shows as a NaN
// g: the root is then NaN.
func solveIncreasing(g rootFunc, x0, lo, hi float64) (x float64, evals int) {
	eval := func(x float64) (float64, float64) {
		evals++
		return g(x)
	}
	x0 = min(max(x0, lo, -math.MaxFloat64), hi, math.MaxFloat64)
	g0, s0 := eval(x0)
	switch {
	case g0 == 0:
		return x0, evals
	case g0 != g0:
		return g0, evals
	}
	newton := func(gx, s float64) float64 { return gx / s } // ±Inf where s = 0
	// Bracket the root on the side g0 points to, keeping the evaluated
	// point of smallest |g| for the first Newton step.
	bx, bg, bs := x0, g0, s0
	probe := func(x float64) (float64, bool) {
		gx, sx := eval(x)
		if math.Abs(gx) < math.Abs(bg) {
			bx, bg, bs = x, gx, sx
		}
		return gx, gx == 0
	}
	d := math.Abs(newton(g0, s0))
	if !(d > 0 && d <= math.MaxFloat64) {
		d = 0x1p-20 * max(1, math.Abs(x0))
	}
	d = max(d, 0x1p-20*rootTol*max(1, math.Abs(x0)))
	if g0 < 0 {
		lo = x0
		if hi <= math.MaxFloat64 {
			if gh, root := probe(hi); root || gh < 0 {
				return hi, evals
			}
		} else {
			for n := 0; ; n++ {
				x := min(lo+d, math.MaxFloat64)
				gx, root := probe(x)
				if root {
					return x, evals
				}
				if gx > 0 {
					hi = x
					break
				}
				if x == math.MaxFloat64 || n == rootMaxExpand {
					return x, evals
				}
				lo, d = x, 16*d
			}
		}
	} else {
		hi = x0
		if lo >= -math.MaxFloat64 {
			if gl, root := probe(lo); root || gl > 0 {
				return lo, evals
			}
		} else {
			for n := 0; ; n++ {
				x := max(hi-d, -math.MaxFloat64)
				gx, root := probe(x)
				if root {
					return x, evals
				}
				if gx < 0 {
					lo = x
					break
				}
				if x == -math.MaxFloat64 || n == rootMaxExpand {
					return x, evals
				}
				hi, d = x, 16*d
			}
		}
	}
	// accept reports whether x, where g = gx and the Newton step is s,
	// gives the root within the tolerance tol (see step 3 of the file's
	// notes); it returns the accepted point.
	accept := func(x, gx, s, tol float64) (float64, bool) {
		if !(math.Abs(s) <= tol) {
			return 0, false
		}
		xn := x - s
		if xn == x {
			return x, true
		}
		gn, sn := eval(xn)
		return xn, gn == 0 || (gn < 0) != (gx < 0) || math.Abs(newton(gn, sn)) <= tol
	}
	step := func(x float64) (float64, float64) {
		gx, s := eval(x)
		return gx, newton(gx, s)
	}
	x = rtsafe(bx-newton(bg, bs), lo, hi, rootMaxIter, rootTol, step, accept)
	return x, evals
}

// rtsafe refines a root of g bracketed by lo < hi (g(lo) < 0 < g(hi)) by
// Newton's method safeguarded by bisection, from x (the bracket's lmixMid
// when x is outside it): eval returns g and the Newton step at a point;
// a step is taken when it stays inside the bracket and is at most half the
// step before last, else the bracket is bisected. It stops when g is 0,
// when the bracket is narrower than relTol·max(1, x_min) (x_min the
// smallest |x| in it), when accept confirms a step within that tolerance,
// or after maxIter iterations. The logistic mixture's inverse and
// solveIncreasing share it.
func rtsafe(x, lo, hi float64, maxIter int, relTol float64, eval func(x float64) (g, step float64), accept func(x, g, step, tol float64) (float64, bool)) float64 {
	if !(x > lo && x < hi) {
		x = lmixMid(lo, hi)
	}
	dxOld, dx := math.Inf(1), math.Inf(1)
	for range maxIter {
		gx, s := eval(x)
		if gx == 0 {
			return x
		}
		if gx < 0 {
			lo = x
		} else {
			hi = x
		}
		t := bracketTol(lo, hi, relTol)
		if hi-lo <= t {
			return x
		}
		if xr, ok := accept(x, gx, s, t); ok {
			return xr
		}
		xn := x - s
		if !(xn > lo && xn < hi && math.Abs(s) <= 0.5*math.Abs(dxOld)) {
			xn = lmixMid(lo, hi)
		}
		dxOld, dx = dx, xn-x
		x = xn
	}
	return x
}

// bracketTol is relTol·max(1, x_min), x_min the smallest |x| in [lo, hi]:
// a bound on the error of any point of the bracket relative to the root's
// size.
func bracketTol(lo, hi, relTol float64) float64 {
	var xmin float64
	if lo > 0 {
		xmin = lo
	} else if hi < 0 {
		xmin = -hi
	}
	return relTol * max(1, xmin)
}
