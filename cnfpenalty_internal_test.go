package flows

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/mat"
)

// penaltyCase is a CNF's regulariser at the perturbed parameters and rows
// of a cnfCase (the same key and settings as the layer's).
func penaltyCase(t *testing.T, cfg CNFConfig, n, d, cdim int) (cnfCase, func(Params, *mat.Dense, *mat.Dense, Params) float64) {
	t.Helper()
	if cfg.Hidden == nil {
		cfg.Hidden = []int{8}
	}
	cc := newCNFCase(t, cfg, n, d, cdim)
	pen, err := CNFPenalty(NewKey(3), cfg, d, cdim)
	if err != nil {
		t.Fatal(err)
	}
	return cc, pen
}

// TestCNFPenaltyGradients checks the regulariser's parameter gradient
// against finite differences of its value, at fixed RK4 steps and a fixed
// ε, for both gradient modes, the exact and Hutchinson's Frobenius norm,
// each term alone and both, with a context.
func TestCNFPenaltyGradients(t *testing.T) {
	s := ODESolver{Method: RK4, Steps: 64}
	type tc struct {
		g        CNFGradient
		tr       TraceMode
		kin, jac float64
	}
	cases := []tc{{BackpropSteps, TraceExact, 0.7, 0}, {Adjoint, TraceHutchinson, 0, 0.3}}
	for _, g := range []CNFGradient{BackpropSteps, Adjoint} {
		for _, tr := range []TraceMode{TraceExact, TraceHutchinson} {
			cases = append(cases, tc{g, tr, 0.7, 0.3})
		}
	}
	for _, c := range cases {
		cfg := CNFConfig{Solver: s, Trace: c.tr, FixedNoise: true, Gradient: c.g, Kinetic: c.kin, Jacobian: c.jac}
		cc, pen := penaltyCase(t, cfg, 3, 3, 2)
		dp := make(Params, len(cc.p))
		pen(cc.p, cc.x, cc.c, dp)
		p := slices.Clone(cc.p)
		fdCheck(t, fmt.Sprintf("%v/%v/%v,%v: dp", c.g, c.tr, c.kin, c.jac), p, dp, func() float64 {
			return pen(p, cc.x, cc.c, make(Params, len(p)))
		})
	}
}

// TestCNFPenaltyAdjointMatchesBackprop checks that the adjoint's gradient
// of the regulariser tends to backpropagation's as the RK4 steps double
// (about 16-fold per doubling, both being fourth order), and that at tight
// DOPRI5 tolerances the two agree.
func TestCNFPenaltyAdjointMatchesBackprop(t *testing.T) {
	grad := func(cfg CNFConfig) Params {
		cc, pen := penaltyCase(t, cfg, 4, 3, 2)
		dp := make(Params, len(cc.p))
		pen(cc.p, cc.x, cc.c, dp)
		return dp
	}
	for _, tr := range []TraceMode{TraceExact, TraceHutchinson} {
		var prev float64
		for i, steps := range []int{10, 20, 40} {
			cfg := CNFConfig{Solver: ODESolver{Method: RK4, Steps: steps}, Trace: tr, FixedNoise: true, Kinetic: 0.5, Jacobian: 0.5}
			a := grad(cfg)
			cfg.Gradient = BackpropSteps
			diff := maxDiff(a, grad(cfg))
			if i > 0 {
				if r := prev / diff; r < 10 || r > 24 {
					t.Errorf("trace %v: adjoint − backprop %.3g at %d steps after %.3g at %d: ratio %.1f, want about 16", tr, diff, steps, prev, steps/2, r)
				}
			}
			prev = diff
		}
	}
	cfg := CNFConfig{Solver: ODESolver{RTol: 1e-10, ATol: 1e-10}, Kinetic: 0.5, Jacobian: 0.5}
	a := grad(cfg)
	cfg.Gradient = BackpropSteps
	if d := maxDiff(a, grad(cfg)); d > 1e-6 {
		t.Errorf("DOPRI5 at 1e-10: adjoint and backprop differ by %g", d)
	}
}

// TestCNFPenaltyValue checks the regulariser's value against a quadrature
// of its integrand along the trajectory: each row's ODE solved (DOPRI5 at
// 1e-11) from t = Time to the nodes of a 65-point Simpson rule, where ‖f‖²
// and ‖∂f/∂z‖²_F (from dim forward tangents) are evaluated.
func TestCNFPenaltyValue(t *testing.T) {
	const kin, jac, T = 0.6, 0.4, 1.5
	cfg := CNFConfig{Hidden: []int{8}, Solver: ODESolver{RTol: 1e-11, ATol: 1e-11}, Time: T, Kinetic: kin, Jacobian: jac}
	cc, pen := penaltyCase(t, cfg, 2, 3, 1)
	got := pen(cc.p, cc.x, cc.c, make(Params, len(cc.p)))
	l, err := newCNF(cfg, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := 3
	var want float64
	for i := 0; i < cc.n; i++ {
		c := cc.c.RawRowView(i)
		ws := l.net.newWork(1, 0)
		f := func(t float64, y, dy []float64) { copy(dy, l.net.forward(cc.p, t, y, c, nil, ws, nil)) }
		const nodes = 65
		ts, vals := make([]float64, nodes), make([]float64, nodes)
		eps := make([]float64, d*d)
		for k := 0; k < d; k++ {
			eps[k*d+k] = 1
		}
		wk := l.net.newWork(1, d)
		for j := range ts {
			ts[j] = T * float64(j) / (nodes - 1)
			z, _, err := ODESolver{RTol: 1e-11, ATol: 1e-11}.Solve(f, T, ts[j], cc.x.RawRowView(i))
			if err != nil {
				t.Fatal(err)
			}
			fz := l.net.forward(cc.p, ts[j], z, c, eps, wk, make([]float64, 1))
			var ke, fr float64
			for _, v := range fz {
				ke += v * v
			}
			for _, v := range wk.ad[l.net.layers()-1] {
				fr += v * v
			}
			vals[j] = kin*ke + jac*fr
		}
		want += integrate.Simpsons(ts, vals) / float64(cc.n)
	}
	if math.Abs(got-want) > 1e-6*math.Abs(want) || want < 0.1 {
		t.Errorf("penalty %.10g, quadrature %.10g", got, want)
	}
}

// TestCNFPenaltyHutchinsonUnbiased checks that Hutchinson's Frobenius
// norm, averaged over many draws of ε (one row repeated), is the exact
// one within four standard errors.
func TestCNFPenaltyHutchinsonUnbiased(t *testing.T) {
	s := ODESolver{Method: RK4, Steps: 8}
	cc, exact := penaltyCase(t, CNFConfig{Solver: s, Trace: TraceExact, Jacobian: 1}, 1, 3, 0)
	_, hutch := penaltyCase(t, CNFConfig{Solver: s, Trace: TraceHutchinson, FixedNoise: true, Jacobian: 1}, 1, 3, 0)
	want := exact(cc.p, cc.x, nil, make(Params, len(cc.p)))
	const m = 1000
	var mean, sq float64
	vals := make([]float64, m)
	for i := range vals {
		// The penalty is a mean over the rows: draw each ε alone, from a
		// key of its own, to see the spread.
		h, err := CNFPenalty(NewKey(uint64(100+i)), CNFConfig{Hidden: []int{8}, Solver: s, Trace: TraceHutchinson, FixedNoise: true, Jacobian: 1}, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		vals[i] = h(cc.p, cc.x, nil, make(Params, len(cc.p)))
		mean += vals[i] / m
	}
	for _, v := range vals {
		sq += (v - mean) * (v - mean)
	}
	se := math.Sqrt(sq / (m - 1) / m)
	if se == 0 || math.Abs(mean-want) > 4*se {
		t.Errorf("Hutchinson mean %.6g ± %.2g, exact %.6g", mean, se, want)
	}
	if v := hutch(cc.p, cc.x, nil, make(Params, len(cc.p))); v == want {
		t.Errorf("Hutchinson's estimate equals the exact norm %v", v)
	}
}

// TestCNFPenaltyErrors checks the configurations CNFPenalty refuses, and
// that the layer ignores the weights.
func TestCNFPenaltyErrors(t *testing.T) {
	for name, cfg := range map[string]CNFConfig{
		"none":     {},
		"negative": {Kinetic: -1, Jacobian: 1},
		"inf":      {Jacobian: math.Inf(1)},
		"nan":      {Kinetic: math.NaN()},
		"hidden":   {Kinetic: 1, Hidden: []int{}},
	} {
		if _, err := CNFPenalty(NewKey(0), cfg, 2, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 4}}, 2, 2, 0)
	b := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 4}, Kinetic: 1, Jacobian: 2}, 2, 2, 0)
	za, la := a.bj.Direct(a.p, a.x, nil)
	zb, lb := b.bj.Direct(b.p, b.x, nil)
	if !slices.Equal(flat(za), flat(zb)) || !slices.Equal(la, lb) {
		t.Error("the weights changed the layer's map")
	}
}
