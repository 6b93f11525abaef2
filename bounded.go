package flows

// Bounded maps each bounded column onto the whole real line with a fixed,
// parameter-free map, so that the layers after it (and the Normal prior,
// which puts mass everywhere) never give density outside the bounds:
//
//	lo < x < hi:  y = log(x − lo) − log(hi − x)   (a scaled logit)
//	lo < x:       y = log(x − lo)
//	x < hi:       y = log(hi − x)
//	unbounded:    y = x
//
// The log-determinants are, column by column, log(hi − lo) − log(x − lo) −
// log(hi − x), −log(x − lo) and −log(hi − x). The inverse of the logit is
// computed from whichever end is nearer, x = lo + (hi−lo)·σ(y) for y < 0
// and hi − (hi−lo)·σ(−y) otherwise, and its log-determinant from y with
// softplus, log(hi − lo) − softplus(y) − softplus(−y), so that neither
// loses precision near a bound.
//
// At the edges of float64: logs go through logSub (math.Log on amd64 is
// wrong for subnormal arguments: log(5e-324) = −709.09 instead of
// −744.44), the derivatives 1/(x − lo) and 1/(hi − x) are capped at
// MaxFloat64 (they overflow for a gap below 1/MaxFloat64), the width
// hi − lo is used halved, so that bounds of ±MaxFloat64 do not overflow
// it, and the inverses keep x strictly inside the bounds and finite: a y
// whose x rounds onto a bound gets the nearest float64 inside, and a y up
// to the image of ±MaxFloat64 gets ±MaxFloat64 rather than ±Inf. So the
// round trip holds to a few ulps of the gap x − lo (or hi − x) for every
// finite x inside the bounds (TestBoundedEdges).
//
// A value on or outside its bounds has no density: Direct gives it the
// output 0 and the log-determinant −Inf, and the pullbacks a zero gradient,
// so a Flow's log density of such a row is −Inf rather than NaN, and
// nothing after the layer sees an infinity. NaN stays NaN, so that bad data
// shows up.

import (
	"fmt"
	"math"
	"slices"
)

// Bounded returns the init function of a fixed elementwise bijection from
// the box lower < x < upper (column by column; −Inf and +Inf leave a side
// open) onto the real line: a scaled logit for a column bounded on both
// sides, a log for one bounded on one side, and the identity for one
// unbounded (the formulas are in bounded.go). Put it first in a flow for
// data that cannot leave an interval (a proportion, a price, a pixel): the
// flow's density is then zero outside, and its samples stay inside.
//
// The slices are copied. A value on or outside its bounds gets the
// log-determinant −Inf (so a Flow's log density −Inf) and the output 0.
// Init returns an error when len(lower) or len(upper) differs from dim, or
// when a pair is not lower < upper with lower < +Inf and upper > −Inf (or
// is NaN). The functions panic for a batch without dim columns or a
// non-empty parameter vector.
func Bounded(lower, upper []float64) InitFunc {
	lower, upper = slices.Clone(lower), slices.Clone(upper)
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		const who = "Bounded"
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if err := checkBounds(who, lower, upper, dim); err != nil {
			return nil, Bijection{}, err
		}
		fwd, inv := make([]elemMap, dim), make([]elemMap, dim)
		for j := range dim {
			fwd[j], inv[j] = boundMaps(lower[j], upper[j])
		}
		return Params{}, elementwise(who, dim, fwd, inv), nil
	}
}

// checkBounds returns an error naming who unless lower and upper hold dim
// bounds each, with lower < upper, lower below +Inf and upper above −Inf.
func checkBounds(who string, lower, upper []float64, dim int) error {
	if len(lower) != dim || len(upper) != dim {
		return fmt.Errorf("flows: %s: %d lower and %d upper bounds for dimension %d", who, len(lower), len(upper), dim)
	}
	for j := range dim {
		if lo, hi := lower[j], upper[j]; !(lo < hi) || math.IsInf(lo, 1) || math.IsInf(hi, -1) {
			return fmt.Errorf("flows: %s: column %d: bounds (%v, %v), want lower < upper, lower below +Inf and upper above −Inf", who, j, lo, hi)
		}
	}
	return nil
}

// boundMaps returns the map of one column of Bounded with bounds lo < hi,
// and its inverse, each with its log-det and their derivatives.
func boundMaps(lo, hi float64) (fwd, inv elemMap) {
	outside := func(x float64) bool { return x <= lo || x >= hi }
	// in keeps an inverse's x inside (lo, hi): onto the nearest float64
	// inside when it rounded onto a bound, ±MaxFloat64 when it overflowed.
	in := func(x float64) float64 {
		x = max(-math.MaxFloat64, min(x, math.MaxFloat64))
		if x <= lo {
			return math.Nextafter(lo, hi)
		}
		if x >= hi {
			return math.Nextafter(hi, lo)
		}
		return x
	}
	switch {
	case math.IsInf(lo, -1) && math.IsInf(hi, 1):
		id := func(x float64) (y, ld, dy, dld float64) { return x, 0, 1, 0 }
		return id, id
	case math.IsInf(hi, 1):
		// y = log(x − lo), log-det −log(x − lo); the inverse x = lo + eʸ
		// with log-det y.
		return func(x float64) (y, ld, dy, dld float64) {
				if outside(x) {
					return 0, math.Inf(-1), 0, 0
				}
				y, q := logSub(x-lo), boundRecip(x-lo)
				return y, -y, q, -q
			}, func(y float64) (x, ld, dx, dld float64) {
				e := math.Exp(y)
				return in(lo + e), y, e, 1
			}
	case math.IsInf(lo, -1):
		// y = log(hi − x), log-det −log(hi − x); the inverse x = hi − eʸ
		// with log-det y.
		return func(x float64) (y, ld, dy, dld float64) {
				if outside(x) {
					return 0, math.Inf(-1), 0, 0
				}
				y, q := logSub(hi-x), boundRecip(hi-x)
				return y, -y, -q, q
			}, func(y float64) (x, ld, dx, dld float64) {
				e := math.Exp(y)
				return in(hi - e), y, -e, 1
			}
	}
	// hw = (hi − lo)/2, finite for any finite bounds.
	hw := hi/2 - lo/2
	lw := logSub(hi - lo)
	if math.IsInf(hi-lo, 1) {
		lw = logSub(hw) + math.Ln2
	}
	// y = log(x − lo) − log(hi − x): dy/dx = 1/(x − lo) + 1/(hi − x), and
	// the log-det log w − log(x − lo) − log(hi − x) has derivative
	// −1/(x − lo) + 1/(hi − x). x − lo and hi − x are exact near their
	// bound; away from it they may overflow when the bounds are far
	// apart, so they are halved first there.
	gap := func(a, b float64) float64 { // a − b > 0, as a log
		if d := a - b; d <= math.MaxFloat64 {
			return logSub(d)
		}
		return logSub(a/2-b/2) + math.Ln2
	}
	return func(x float64) (y, ld, dy, dld float64) {
			if outside(x) {
				return 0, math.Inf(-1), 0, 0
			}
			a, c := gap(x, lo), gap(hi, x)
			qa, qc := boundRecip(x-lo), boundRecip(hi-x)
			return a - c, lw - a - c, min(qa+qc, math.MaxFloat64), qc - qa
		}, func(y float64) (x, ld, dx, dld float64) {
			// x = lo + w·σ(y), from the nearer end; dx/dy = w·σ(y)σ(−y),
			// log-det log w − softplus(y) − softplus(−y) with derivative
			// σ(−y) − σ(y).
			s, t := elemSigmoid(y), elemSigmoid(-y)
			if y < 0 {
				x = lo + hw*(2*s)
			} else {
				x = hi - hw*(2*t)
			}
			return in(x), lw - elemSoftplus(y) - elemSoftplus(-y), min(2*hw*s*t, math.MaxFloat64), t - s
		}
}

// boundRecip is 1/d for a gap d > 0, capped at MaxFloat64 (d below
// 1/MaxFloat64 is subnormal, and its reciprocal overflows).
func boundRecip(d float64) float64 {
	return min(1/d, math.MaxFloat64)
}

// logSub is math.Log, right for subnormal arguments too: amd64's
// math.Log returns −709.09 for 5e-324, whose log is −744.44, so a
// subnormal is scaled into the normal range by 2⁵⁴ first.
func logSub(x float64) float64 {
	if x > 0 && x < 0x1p-1022 {
		return math.Log(x*0x1p54) - 54*math.Ln2
	}
	return math.Log(x)
}
