package flows

import (
	"math"
	"testing"
)

// rootMaxEvals is the most evaluations solveIncreasing may make.
const rootMaxEvals = 1 + rootMaxExpand + 1 + 2*rootMaxIter + 1

func TestSolveIncreasing(t *testing.T) {
	cubic := func(z float64) rootFunc { // x³ + 1e-3·x
		return func(x float64) (float64, float64) { return x*x*x + 1e-3*x - z, 3*x*x + 1e-3 }
	}
	for _, c := range []struct {
		name   string
		g      rootFunc
		x0     float64
		want   float64
		lo, hi float64
	}{
		{"identity", func(x float64) (float64, float64) { return x - 3.5, 1 }, 0, 3.5, math.Inf(-1), math.Inf(1)},
		{"identity-far", func(x float64) (float64, float64) { return x - 1e300, 1 }, 0, 1e300, math.Inf(-1), math.Inf(1)},
		{"identity-far-negative", func(x float64) (float64, float64) { return x + 1e300, 1 }, 7, -1e300, math.Inf(-1), math.Inf(1)},
		{"cubic", cubic(8), 0, 1.9998333333337193, math.Inf(-1), math.Inf(1)},
		{"cubic-huge", cubic(1e300), 0, 1e100, math.Inf(-1), math.Inf(1)},
		{"cubic-tiny", cubic(1e-200), 0, 1e-197, math.Inf(-1), math.Inf(1)},
		{"flat-slope", func(x float64) (float64, float64) { return 1e-300*x - 1, 1e-300 }, 0, 1e300, math.Inf(-1), math.Inf(1)},
		{"steep", func(x float64) (float64, float64) { return 1e300*x - 1, 1e300 }, 5, 1e-300, math.Inf(-1), math.Inf(1)},
		{"exp", func(x float64) (float64, float64) { return math.Exp(x) - 1e-300, math.Exp(x) }, 0, math.Log(1e-300), math.Inf(-1), math.Inf(1)},
		{"bracketed", cubic(-8), 0, -1.9998333333337193, -3, 3},
		// Zero slope everywhere (a step-like f): Newton is useless and
		// bisection alone must converge.
		{"zero-slope", func(x float64) (float64, float64) { return math.Tanh(1e3*(x-0.25)) * 1e-3, 0 }, 0, 0.25, math.Inf(-1), math.Inf(1)},
		// A slope ten times too small: Newton overshoots and the
		// safeguard bisects. (A slope too large would make corrections
		// look smaller than the error: the tolerance assumes a slope
		// that is right or too small.)
		{"small-slope", func(x float64) (float64, float64) { return x*x*x - 27, 0.3 * x * x }, 1, 3, math.Inf(-1), math.Inf(1)},
	} {
		x, evals := solveIncreasing(c.g, c.x0, c.lo, c.hi)
		if math.Abs(x-c.want) > rootTol*max(1, math.Abs(c.want))*1.0000001 && math.Abs(x-c.want) > 4*math.Abs(c.want)*0x1p-52 {
			t.Errorf("%s: root %v, want %v (error %g, tolerance %g)", c.name, x, c.want, x-c.want, rootTol*max(1, math.Abs(c.want)))
		}
		if evals > rootMaxEvals {
			t.Errorf("%s: %d evaluations, want at most %d", c.name, evals, rootMaxEvals)
		}
		t.Logf("%s: %d evaluations", c.name, evals)
	}
}

// TestSolveIncreasingBeyondFloat64 checks the roots that float64 cannot
// hold: the nearest end is returned.
func TestSolveIncreasingBeyondFloat64(t *testing.T) {
	g := func(x float64) (float64, float64) { return 1e-310*x - 1, 1e-310 } // root 1e310
	if x, evals := solveIncreasing(g, 0, math.Inf(-1), math.Inf(1)); x != math.MaxFloat64 || evals > rootMaxEvals {
		t.Errorf("root beyond float64: %v after %d evaluations, want MaxFloat64", x, evals)
	}
	g = func(x float64) (float64, float64) { return 1e-310*x + 1, 1e-310 }
	if x, _ := solveIncreasing(g, 0, math.Inf(-1), math.Inf(1)); x != -math.MaxFloat64 {
		t.Errorf("root beyond −float64: %v, want −MaxFloat64", x)
	}
	g = func(x float64) (float64, float64) { return math.NaN(), 1 }
	if x, _ := solveIncreasing(g, 0, math.Inf(-1), math.Inf(1)); !math.IsNaN(x) {
		t.Errorf("NaN target: root %v, want NaN", x)
	}
}
