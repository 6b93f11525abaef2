package flows

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestRKStepVJP checks backpropagation through one step of each tableau
// against finite differences of the step map, for a nonlinear,
// time-dependent ODE.
func TestRKStepVJP(t *testing.T) {
	a := []float64{0.9, -1.3, 0.4, 0.7}
	f := func(t float64, y, dy []float64) {
		dy[0] = math.Tanh(a[0]*y[0]+a[1]*y[1]) + t
		dy[1] = math.Sin(a[2]*y[0]+a[3]*y[1]) * t
	}
	vjp := func(t float64, y, v, out []float64) {
		u0 := 1 - math.Pow(math.Tanh(a[0]*y[0]+a[1]*y[1]), 2)
		u1 := math.Cos(a[2]*y[0]+a[3]*y[1]) * t
		out[0] = v[0]*u0*a[0] + v[1]*u1*a[2]
		out[1] = v[0]*u0*a[1] + v[1]*u1*a[3]
	}
	y := []float64{0.3, -0.8}
	v := []float64{1.1, -0.6}
	for name, tab := range map[string]*tableau{"rk4": &rk4Tableau, "dopri5": &dopri5Tableau} {
		const t0, h = 0.2, 0.35
		w := newRKWork(tab, 2)
		kbar, ytmp := make([][]float64, len(tab.c)), make([][]float64, len(tab.c))
		for i := range kbar {
			kbar[i], ytmp[i] = make([]float64, 2), make([]float64, 2)
		}
		ybar := slices.Clone(v)
		rkStepVJP(tab, f, vjp, t0, h, y, ybar, w, kbar, ytmp)
		step := func(y []float64) float64 {
			w := newRKWork(tab, 2)
			rkStep(tab, f, t0, h, y, w, false)
			return v[0]*w.out[0] + v[1]*w.out[1]
		}
		yy := slices.Clone(y)
		fdCheck(t, name+": ybar", yy, ybar, func() float64 { return step(yy) })
	}
}

// cnfCase makes a CNF bijection of the given settings at strongly
// perturbed parameters (a map far from the identity), with a batch, a
// context and cotangents.
type cnfCase struct {
	bj         Bijection
	p          Params
	x, c, dz   *mat.Dense
	dl         []float64
	n, d, cdim int
}

func newCNFCase(t *testing.T, cfg CNFConfig, n, d, cdim int) cnfCase {
	t.Helper()
	if cfg.Hidden == nil {
		cfg.Hidden = []int{8}
	}
	p, bj, err := CNF(cfg)(NewKey(3), d, cdim)
	if err != nil {
		t.Fatal(err)
	}
	rng := NewKey(4).Rand()
	for i := range p {
		p[i] += 0.7 * rng.NormFloat64()
	}
	draw := func(r, c int) *mat.Dense {
		if c == 0 {
			return nil
		}
		m := mat.NewDense(r, c, nil)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				m.Set(i, j, rng.NormFloat64())
			}
		}
		return m
	}
	cc := cnfCase{bj: bj, p: p, x: draw(n, d), c: draw(n, cdim), dz: draw(n, d), n: n, d: d, cdim: cdim}
	for i := 0; i < n; i++ {
		cc.dl = append(cc.dl, rng.NormFloat64())
	}
	return cc
}

// grads returns the pullback's dx, dp and dc.
func (cc cnfCase) grads() (*mat.Dense, Params, *mat.Dense) {
	_, _, back := cc.bj.DirectVJP(cc.p, cc.x, cc.c)
	dp := make(Params, len(cc.p))
	var dc *mat.Dense
	if cc.cdim > 0 {
		dc = mat.NewDense(cc.n, cc.cdim, nil)
	}
	return back(cc.dz, cc.dl, dp, dc), dp, dc
}

func maxDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func flat(m *mat.Dense) []float64 {
	if m == nil {
		return nil
	}
	return slices.Clone(m.RawMatrix().Data)
}

// TestCNFAdjointMatchesBackprop checks that the adjoint's gradients tend
// to those of backpropagation through the steps: with RK4 their difference
// falls about 16-fold per doubling of the steps (both are fourth-order
// accurate gradients of the same flow), and with DOPRI5 at tight
// tolerances they agree to 1e-6.
func TestCNFAdjointMatchesBackprop(t *testing.T) {
	for _, trace := range []TraceMode{TraceExact, TraceHutchinson} {
		var prev float64
		for i, steps := range []int{10, 20, 40} {
			s := ODESolver{Method: RK4, Steps: steps}
			adj := newCNFCase(t, CNFConfig{Solver: s, Trace: trace, FixedNoise: true}, 4, 3, 2)
			bp := newCNFCase(t, CNFConfig{Solver: s, Trace: trace, FixedNoise: true, Gradient: BackpropSteps}, 4, 3, 2)
			ax, ap, ac := adj.grads()
			bx, bpp, bc := bp.grads()
			diff := max(maxDiff(flat(ax), flat(bx)), maxDiff(ap, bpp), maxDiff(flat(ac), flat(bc)))
			if i > 0 {
				if r := prev / diff; r < 10 || r > 24 {
					t.Errorf("trace %d: adjoint − backprop %.3g at %d steps after %.3g at %d: ratio %.1f, want about 16", trace, diff, steps, prev, steps/2, r)
				}
			}
			prev = diff
		}
	}
	s := ODESolver{RTol: 1e-10, ATol: 1e-10}
	adj := newCNFCase(t, CNFConfig{Solver: s}, 4, 2, 1)
	bp := newCNFCase(t, CNFConfig{Solver: s, Gradient: BackpropSteps}, 4, 2, 1)
	ax, ap, ac := adj.grads()
	bx, bpp, bc := bp.grads()
	if d := max(maxDiff(flat(ax), flat(bx)), maxDiff(ap, bpp), maxDiff(flat(ac), flat(bc))); d > 1e-6 {
		t.Errorf("DOPRI5 at 1e-10: adjoint and backprop differ by %g", d)
	}
}

// TestCNFHutchinsonGradients checks the Hutchinson log density and its
// gradients (inputs, context, parameters) against finite differences, at a
// fixed ε and RK4 steps, for both gradient modes. The adjoint's gradient is
// that of the flow, not of the discrete map: with 64 steps the two differ
// by less than the check's tolerance.
func TestCNFHutchinsonGradients(t *testing.T) {
	for _, g := range []CNFGradient{BackpropSteps, Adjoint} {
		cc := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 64}, Trace: TraceHutchinson, FixedNoise: true, Gradient: g}, 3, 3, 2)
		dx, dp, dc := cc.grads()
		loss := func(p Params, x, c *mat.Dense) float64 {
			z, ld := cc.bj.Direct(p, x, c)
			var s float64
			for i := 0; i < cc.n; i++ {
				s += cc.dl[i] * ld[i]
				for j := 0; j < cc.d; j++ {
					s += cc.dz.At(i, j) * z.At(i, j)
				}
			}
			return s
		}
		p, x, c := slices.Clone(cc.p), mat.DenseCopyOf(cc.x), mat.DenseCopyOf(cc.c)
		l := func() float64 { return loss(p, x, c) }
		fdCheck(t, "dx", x.RawMatrix().Data, dx.RawMatrix().Data, l)
		fdCheck(t, "dc", c.RawMatrix().Data, dc.RawMatrix().Data, l)
		fdCheck(t, "dp", p, dp, l)
	}
}

// TestCNFExactTraceDOPRI5 checks the exact-trace log-det of an adaptive
// solve against log|det| of the finite-difference Jacobian of the map.
func TestCNFExactTraceDOPRI5(t *testing.T) {
	cc := newCNFCase(t, CNFConfig{Solver: ODESolver{RTol: 1e-10, ATol: 1e-10}, Time: 4}, 1, 3, 0)
	_, ld := cc.bj.Direct(cc.p, cc.x, nil)
	jac := mat.NewDense(3, 3, nil)
	const h = 1e-5
	for j := 0; j < 3; j++ {
		xp, xm := mat.DenseCopyOf(cc.x), mat.DenseCopyOf(cc.x)
		xp.Set(0, j, xp.At(0, j)+h)
		xm.Set(0, j, xm.At(0, j)-h)
		zp, _ := cc.bj.Direct(cc.p, xp, nil)
		zm, _ := cc.bj.Direct(cc.p, xm, nil)
		for k := 0; k < 3; k++ {
			jac.Set(k, j, (zp.At(0, k)-zm.At(0, k))/(2*h))
		}
	}
	var lu mat.LU
	lu.Factorize(jac)
	want, _ := lu.LogDet()
	if math.Abs(ld[0]-want) > 1e-7 || math.Abs(want) < 0.1 {
		t.Errorf("log-det %.10g, log|det J| by finite differences %.10g", ld[0], want)
	}
}

// TestCNFHutchinsonUnbiased checks that the mean of Hutchinson's log-det
// over many draws of ε (one row repeated, a fixed ε per index) is the
// exact log-det within four standard errors, and that the draws differ.
func TestCNFHutchinsonUnbiased(t *testing.T) {
	s := ODESolver{Method: RK4, Steps: 16}
	ex := newCNFCase(t, CNFConfig{Solver: s}, 1, 3, 0)
	hu := newCNFCase(t, CNFConfig{Solver: s, Trace: TraceHutchinson, FixedNoise: true}, 1, 3, 0)
	_, want := ex.bj.Direct(ex.p, ex.x, nil)
	const m = 2000
	x := mat.NewDense(m, 3, nil)
	for i := 0; i < m; i++ {
		x.SetRow(i, ex.x.RawRowView(0))
	}
	_, ld := hu.bj.Direct(hu.p, x, nil)
	var mean, sq float64
	for _, v := range ld {
		mean += v / m
	}
	for _, v := range ld {
		sq += (v - mean) * (v - mean)
	}
	se := math.Sqrt(sq / (m - 1) / m)
	if se == 0 || math.Abs(mean-want[0]) > 4*se {
		t.Errorf("Hutchinson mean %.6g ± %.2g, exact %.6g", mean, se, want[0])
	}
}

// TestCNFFreshNoise checks the default noise: the same call gives the same
// bits, and new parameters or another row value give another draw.
func TestCNFFreshNoise(t *testing.T) {
	cc := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 8}, Trace: TraceHutchinson}, 2, 12, 0)
	_, a := cc.bj.Direct(cc.p, cc.x, nil)
	_, b := cc.bj.Direct(cc.p, cc.x, nil)
	if !slices.Equal(a, b) {
		t.Fatalf("same call, different log-dets: %v %v", a, b)
	}
	// A change of the parameters far below the map's sensitivity still
	// redraws ε: the log-det moves by O(1), not O(1e-12).
	p := slices.Clone(cc.p)
	p[0] = math.Nextafter(p[0], math.Inf(1))
	_, c := cc.bj.Direct(p, cc.x, nil)
	if math.Abs(c[0]-a[0]) < 1e-6 && math.Abs(c[1]-a[1]) < 1e-6 {
		t.Errorf("new parameters drew the same noise: %v %v", a, c)
	}
	// TraceAuto at dim 12 is Hutchinson's.
	auto := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 8}}, 2, 12, 0)
	if _, d := auto.bj.Direct(auto.p, auto.x, nil); !slices.Equal(d, a) {
		t.Errorf("TraceAuto at dim 12: %v, Hutchinson's %v", d, a)
	}
}

// TestCNFStatsAndBudget checks the stats hook's counts and passes, and
// that a solve past its budget gives NaN rows and reports the error.
func TestCNFStatsAndBudget(t *testing.T) {
	var mu sync.Mutex
	var got []CNFStats
	hook := func(s CNFStats) { mu.Lock(); got = append(got, s); mu.Unlock() }
	cc := newCNFCase(t, CNFConfig{Solver: ODESolver{Method: RK4, Steps: 5}, Stats: hook, Gradient: BackpropSteps}, 3, 2, 0)
	cc.grads()
	z, _ := cc.bj.Direct(cc.p, cc.x, nil)
	cc.bj.Inverse(cc.p, z, nil)
	want := []CNFStats{
		{Pass: CNFDirect, ODEStats: ODEStats{NFE: 20, Steps: 5}, Rows: 3, VJP: true},
		{Pass: CNFBackward, ODEStats: ODEStats{NFE: 20, Steps: 5}, Rows: 3},
		{Pass: CNFDirect, ODEStats: ODEStats{NFE: 20, Steps: 5}, Rows: 3},
		{Pass: CNFInverse, ODEStats: ODEStats{NFE: 20, Steps: 5}, Rows: 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	got = nil
	bud := newCNFCase(t, CNFConfig{Solver: ODESolver{MaxSteps: 2, RTol: 1e-12, ATol: 1e-12}, Stats: hook}, 2, 2, 0)
	z, ld := bud.bj.Direct(bud.p, bud.x, nil)
	if !math.IsNaN(z.At(0, 0)) || !math.IsNaN(ld[1]) || len(got) != 1 || !errors.Is(got[0].Err, ErrODE) {
		t.Errorf("budget exceeded: z %v, log-det %v, stats %+v", mat.Formatted(z), ld, got)
	}
}

// TestCNFModeNames checks the text forms of the trace and gradient modes.
func TestCNFModeNames(t *testing.T) {
	for _, m := range []TraceMode{TraceAuto, TraceExact, TraceHutchinson} {
		b, err := m.MarshalText()
		var back TraceMode
		if err != nil || back.UnmarshalText([]byte(strings.ToUpper(string(b)))) != nil || back != m || m.String() != string(b) {
			t.Errorf("%v: text %q, %v; read back %v", m, b, err, back)
		}
	}
	for _, g := range []CNFGradient{Adjoint, BackpropSteps} {
		b, err := g.MarshalText()
		var back CNFGradient
		if err != nil || back.UnmarshalText(b) != nil || back != g || g.String() != string(b) {
			t.Errorf("%v: text %q, %v; read back %v", g, b, err, back)
		}
	}
	if TraceHutchinson.String() != "hutchinson" || BackpropSteps.String() != "backprop" {
		t.Errorf("names %v, %v", TraceHutchinson, BackpropSteps)
	}
	var m TraceMode
	if _, err := TraceMode(3).MarshalText(); err == nil || m.UnmarshalText([]byte("trace")) == nil {
		t.Error("an unknown mode has a text form")
	}
}

// TestCNFInitErrors checks the configuration errors.
func TestCNFInitErrors(t *testing.T) {
	for name, cfg := range map[string]CNFConfig{
		"relu-less":  {Activation: ELU},
		"no-hidden":  {Hidden: []int{}},
		"zero-width": {Hidden: []int{4, 0}},
		"time":       {Time: -1},
		"solver":     {Solver: ODESolver{RTol: -1}},
		"trace":      {Trace: 9},
		"gradient":   {Gradient: 5},
	} {
		if _, _, err := CNF(cfg)(NewKey(0), 2, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, _, err := CNF(CNFConfig{})(NewKey(0), 0, 0); err == nil {
		t.Error("dim 0: no error")
	}
}
