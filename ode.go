package flows

// ODE solvers for the continuous normalizing flow (cnf.go): explicit
// Runge–Kutta methods over a flat state vector, written once over a
// Butcher tableau.
//
// DOPRI5 is the Dormand–Prince 5(4) pair with the standard controller of
// Hairer, Nørsett and Wanner (Solving ODEs I, section II.4): the error
// estimate e = h·Σ (b_i − b*_i)·k_i is measured in the RMS norm
//
//	err = sqrt(mean_i (e_i / (ATol + RTol·max(|y_i|, |y_new,i|)))²),
//
// a step is accepted when err ≤ 1, and the next step is
// h·min(10, max(0.2, 0.9·err^(−1/5))) (at most h after a rejection). The
// first step follows Hairer's starting-step algorithm (one extra
// evaluation). The last stage of an accepted step is the derivative at
// its end (first same as last), so an accepted step costs six evaluations
// and a rejected one six as well. The last step is shortened to land on
// t1 exactly.
//
// RK4 is the classical fourth-order method with Steps equal steps.
//
// Both are deterministic: the same function, interval, state and settings
// give the same steps and the same bits, since every sum is taken in one
// fixed order. MaxSteps bounds the steps tried (accepted and rejected);
// a solve that needs more, or whose step size falls below the spacing of
// float64 values near t, stops with an error wrapping ErrODE.
//
// Backpropagation through the steps (rkStepVJP) treats each step's size
// as a constant, as discretise-then-optimise does: the gradient is that of
// the discrete map the solver computed.

import (
	"errors"
	"fmt"
	"math"
)

// ODEMethod names an ODE solver.
type ODEMethod int

const (
	// DOPRI5 is the adaptive Dormand–Prince 5(4) method.
	DOPRI5 ODEMethod = iota
	// RK4 is the classical Runge–Kutta method with a fixed number of
	// equal steps.
	RK4
)

// String returns the method's name, as in the Go constant.
func (m ODEMethod) String() string {
	switch m {
	case DOPRI5:
		return "DOPRI5"
	case RK4:
		return "RK4"
	}
	return fmt.Sprintf("ODEMethod(%d)", int(m))
}

// ErrODE is wrapped by the errors of a solve that exceeds its step budget
// or whose step size underflows.
var ErrODE = errors.New("flows: ODE solve failed")

// ODESolver configures an ODE solve. The zero value is DOPRI5 with the
// default tolerances and budget.
type ODESolver struct {
	// Method is the solver (default DOPRI5).
	Method ODEMethod
	// RTol and ATol are DOPRI5's relative and absolute tolerances
	// (1e-5 each when both are zero). They must not be negative.
	RTol, ATol float64
	// Steps is RK4's number of equal steps (default 20).
	Steps int
	// MaxSteps bounds the steps DOPRI5 tries, accepted or rejected
	// (default 1000).
	MaxSteps int
}

// ODEStats counts the work of a solve.
type ODEStats struct {
	// NFE is the number of evaluations of the derivative.
	NFE int
	// Steps and Rejected count the accepted and rejected steps.
	Steps, Rejected int
}

// Add returns the sum of two counts.
func (s ODEStats) Add(o ODEStats) ODEStats {
	return ODEStats{NFE: s.NFE + o.NFE, Steps: s.Steps + o.Steps, Rejected: s.Rejected + o.Rejected}
}

// ODEFunc writes dy/dt at (t, y) into dy (len(dy) == len(y)). It must not
// modify y.
type ODEFunc func(t float64, y, dy []float64)

// Defaults of ODESolver.
const (
	odeDefaultTol      = 1e-5
	odeDefaultSteps    = 20
	odeDefaultMaxSteps = 1000
)

// resolve returns s with its defaults filled in, or an error naming a bad
// setting.
func (s ODESolver) resolve() (ODESolver, error) {
	switch s.Method {
	case DOPRI5, RK4:
	default:
		return s, fmt.Errorf("flows: ODESolver: unknown method %d", int(s.Method))
	}
	if s.RTol < 0 || s.ATol < 0 || math.IsNaN(s.RTol) || math.IsNaN(s.ATol) || math.IsInf(s.RTol, 0) || math.IsInf(s.ATol, 0) {
		return s, fmt.Errorf("flows: ODESolver: tolerances RTol %v and ATol %v must be finite and not negative", s.RTol, s.ATol)
	}
	if s.Steps < 0 || s.MaxSteps < 0 {
		return s, fmt.Errorf("flows: ODESolver: Steps %d and MaxSteps %d must not be negative", s.Steps, s.MaxSteps)
	}
	if s.RTol == 0 && s.ATol == 0 {
		s.RTol, s.ATol = odeDefaultTol, odeDefaultTol
	}
	if s.Steps == 0 {
		s.Steps = odeDefaultSteps
	}
	if s.MaxSteps == 0 {
		s.MaxSteps = odeDefaultMaxSteps
	}
	return s, nil
}

// tableau is an explicit Runge–Kutta method: stage i is evaluated at
// t + c[i]·h and y + h·Σ_j a[i][j]·k_j; the step is y + h·Σ b_i·k_i, and
// e (adaptive methods only) gives the error estimate h·Σ e_i·k_i.
type tableau struct {
	c    []float64
	a    [][]float64
	b, e []float64
}

var rk4Tableau = tableau{
	c: []float64{0, 0.5, 0.5, 1},
	a: [][]float64{nil, {0.5}, {0, 0.5}, {0, 0, 1}},
	b: []float64{1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6},
}

// dopri5Tableau has seven stages; the seventh is evaluated at the step's
// end (b has a zero weight for it), which makes it the next step's first.
var dopri5Tableau = tableau{
	c: []float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1},
	a: [][]float64{
		nil,
		{1.0 / 5},
		{3.0 / 40, 9.0 / 40},
		{44.0 / 45, -56.0 / 15, 32.0 / 9},
		{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
		{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
		{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
	},
	b: []float64{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0},
	e: []float64{71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40},
}

// rkWork holds the stages and temporaries of one solve.
type rkWork struct {
	k        [][]float64
	tmp, out []float64
}

func newRKWork(tab *tableau, n int) *rkWork {
	w := &rkWork{k: make([][]float64, len(tab.c)), tmp: make([]float64, n), out: make([]float64, n)}
	for i := range w.k {
		w.k[i] = make([]float64, n)
	}
	return w
}

// rkStep takes one step of tab from (t, y) with step h into w.out,
// evaluating every stage; when haveK0, w.k[0] already holds f(t, y). It
// returns the number of evaluations.
func rkStep(tab *tableau, f ODEFunc, t, h float64, y []float64, w *rkWork, haveK0 bool) int {
	nfe := 0
	for i := range tab.c {
		if i == 0 && haveK0 {
			continue
		}
		stageInput(tab, i, h, y, w.k, w.tmp)
		f(t+tab.c[i]*h, w.tmp, w.k[i])
		nfe++
	}
	combine(tab.b, h, y, w.k, w.out)
	return nfe
}

// stageInput writes y + h·Σ_j a[i][j]·k_j into dst.
func stageInput(tab *tableau, i int, h float64, y []float64, k [][]float64, dst []float64) {
	combine(tab.a[i], h, y, k, dst)
}

// combine writes y + h·Σ_j w_j·k_j into dst, summing in the order of j.
func combine(wts []float64, h float64, y []float64, k [][]float64, dst []float64) {
	copy(dst, y)
	for j, wj := range wts {
		if wj == 0 {
			continue
		}
		hw := h * wj
		kj := k[j]
		for m := range dst {
			dst[m] += hw * kj[m]
		}
	}
}

// odeStep is an accepted step, recorded for backpropagation.
type odeStep struct {
	t, h float64
	y    []float64 // the state at t (a copy)
}

// Solve integrates dy/dt = f(t, y) from t0 to t1 (either direction) from
// y0, which it does not modify, and returns y(t1) and the work done. The
// error wraps ErrODE when the step budget is exceeded or the step size
// underflows; y is then the state where the solve stopped.
func (s ODESolver) Solve(f ODEFunc, t0, t1 float64, y0 []float64) ([]float64, ODEStats, error) {
	rs, err := s.resolve()
	if err != nil {
		return nil, ODEStats{}, err
	}
	return rs.solve(f, t0, t1, y0, nil)
}

// solve is Solve on resolved settings; record, when not nil, is called
// with every accepted step before it is taken.
func (s ODESolver) solve(f ODEFunc, t0, t1 float64, y0 []float64, record func(odeStep)) ([]float64, ODEStats, error) {
	y := append([]float64(nil), y0...)
	if s.Method == RK4 {
		return s.solveRK4(f, t0, t1, y, record)
	}
	return s.solveDOPRI5(f, t0, t1, y, record)
}

func (s ODESolver) solveRK4(f ODEFunc, t0, t1 float64, y []float64, record func(odeStep)) ([]float64, ODEStats, error) {
	var st ODEStats
	if t0 == t1 {
		return y, st, nil
	}
	w := newRKWork(&rk4Tableau, len(y))
	h := (t1 - t0) / float64(s.Steps)
	for i := 0; i < s.Steps; i++ {
		t := t0 + float64(i)*h
		if record != nil {
			record(odeStep{t: t, h: h, y: append([]float64(nil), y...)})
		}
		st.NFE += rkStep(&rk4Tableau, f, t, h, y, w, false)
		copy(y, w.out)
		st.Steps++
	}
	return y, st, nil
}

func (s ODESolver) solveDOPRI5(f ODEFunc, t0, t1 float64, y []float64, record func(odeStep)) ([]float64, ODEStats, error) {
	var st ODEStats
	if t0 == t1 {
		return y, st, nil
	}
	tab := &dopri5Tableau
	w := newRKWork(tab, len(y))
	dir := math.Copysign(1, t1-t0)
	f(t0, y, w.k[0])
	st.NFE++
	h := s.firstStep(f, t0, t1, y, w)
	st.NFE++
	t := t0
	last := len(tab.c) - 1
	facMax := 10.0
	for dir*(t1-t) > 0 {
		if st.Steps+st.Rejected >= s.MaxSteps {
			return y, st, fmt.Errorf("%w: %d steps tried without reaching t = %v from %v (at t = %v)", ErrODE, s.MaxSteps, t1, t0, t)
		}
		if dir*(t+h-t1) > 0 {
			h = t1 - t
		}
		if math.Abs(h) <= 16*math.Abs(t)*0x1p-52 || h == 0 {
			return y, st, fmt.Errorf("%w: step size %v underflows at t = %v", ErrODE, h, t)
		}
		st.NFE += rkStep(tab, f, t, h, y, w, true)
		errNorm := s.errorNorm(tab, h, y, w)
		if !(errNorm <= 1) {
			st.Rejected++
			fac := 0.2
			if !math.IsNaN(errNorm) && !math.IsInf(errNorm, 0) {
				fac = max(0.2, 0.9*math.Pow(errNorm, -0.2))
			}
			h *= min(1, fac)
			facMax = 1
			continue
		}
		if record != nil {
			record(odeStep{t: t, h: h, y: append([]float64(nil), y...)})
		}
		st.Steps++
		tNext := t + h
		if dir*(t1-tNext) <= 0 || tNext == t1 {
			tNext = t1
		}
		t = tNext
		copy(y, w.out)
		w.k[0], w.k[last] = w.k[last], w.k[0]
		fac := facMax
		if errNorm > 0 {
			fac = min(facMax, max(0.2, 0.9*math.Pow(errNorm, -0.2)))
		}
		h *= fac
		facMax = 10
	}
	return y, st, nil
}

// errorNorm returns the RMS norm of DOPRI5's error estimate, scaled by the
// tolerances, for the step from y to w.out.
func (s ODESolver) errorNorm(tab *tableau, h float64, y []float64, w *rkWork) float64 {
	var sum float64
	for m := range y {
		var e float64
		for j, ej := range tab.e {
			if ej != 0 {
				e += ej * w.k[j][m]
			}
		}
		e *= h
		sc := s.ATol + s.RTol*max(math.Abs(y[m]), math.Abs(w.out[m]))
		if e == 0 {
			continue // also where sc is 0 (ATol 0 at a zero component)
		}
		r := e / sc
		sum += r * r
	}
	return math.Sqrt(sum / float64(max(1, len(y))))
}

// firstStep returns the signed size of DOPRI5's first step by Hairer's
// algorithm, given f(t0, y) in w.k[0]; it evaluates f once, at an Euler
// step, using w.tmp and w.out.
func (s ODESolver) firstStep(f ODEFunc, t0, t1 float64, y []float64, w *rkWork) float64 {
	dir := math.Copysign(1, t1-t0)
	var d0, d1 float64
	for m := range y {
		sc := s.ATol + s.RTol*math.Abs(y[m])
		if sc == 0 {
			continue // ATol 0 at a zero component
		}
		d0 += (y[m] / sc) * (y[m] / sc)
		d1 += (w.k[0][m] / sc) * (w.k[0][m] / sc)
	}
	nn := float64(max(1, len(y)))
	d0, d1 = math.Sqrt(d0/nn), math.Sqrt(d1/nn)
	h0 := 1e-6
	if d0 >= 1e-5 && d1 >= 1e-5 {
		h0 = 0.01 * d0 / d1
	}
	h0 = min(h0, math.Abs(t1-t0))
	for m := range y {
		w.tmp[m] = y[m] + dir*h0*w.k[0][m]
	}
	f(t0+dir*h0, w.tmp, w.out)
	var d2 float64
	for m := range y {
		sc := s.ATol + s.RTol*math.Abs(y[m])
		if sc == 0 {
			continue
		}
		r := (w.out[m] - w.k[0][m]) / sc
		d2 += r * r
	}
	d2 = math.Sqrt(d2/nn) / h0
	h1 := max(1e-6, h0*1e-3)
	if m := max(d1, d2); m > 1e-15 {
		h1 = math.Pow(0.01/m, 0.2)
	}
	return dir * min(100*h0, h1, math.Abs(t1-t0))
}

// odeVJP writes vᵀ·∂f/∂y at (t, y) into out and accumulates, in its own
// state, the cotangents of whatever else f depends on (parameters,
// contexts).
type odeVJP func(t float64, y, v, out []float64)

// rkStepVJP backpropagates the cotangent ybar of one step's result
// through the step of tab from (t, y) with size h, in place: on return
// ybar holds the cotangent of y. It recomputes the stages (len(tab.b)
// evaluations of f, those with a zero weight in b and in every later a
// row skipped) and calls vjp once per stage. It returns the number of
// evaluations of f (as many as of vjp).
func rkStepVJP(tab *tableau, f ODEFunc, vjp odeVJP, t, h float64, y, ybar []float64, w *rkWork, kbar [][]float64, ytmp [][]float64) int {
	s := len(tab.b)
	for s > 0 && tab.b[s-1] == 0 {
		s-- // DOPRI5's seventh stage does not enter the step
	}
	nfe := 0
	for i := 0; i < s; i++ {
		stageInput(tab, i, h, y, w.k, ytmp[i])
		f(t+tab.c[i]*h, ytmp[i], w.k[i])
		nfe++
	}
	// Stage inputs Y_i = y + h Σ_j a_ij k_j; result y + h Σ b_i k_i.
	// k̄_i = h b_i ȳ + Σ_{j>i} h a_ji Ȳ_j, with Ȳ_j = vjp(k̄_j); ȳ += Σ Ȳ_i.
	for i := s - 1; i >= 0; i-- {
		kb := kbar[i]
		for m := range kb {
			kb[m] = h * tab.b[i] * ybar[m]
		}
		for j := i + 1; j < s; j++ {
			if i < len(tab.a[j]) && tab.a[j][i] != 0 {
				ha := h * tab.a[j][i]
				yb := w.k[j] // holds Ȳ_j once stage j is done
				for m := range kb {
					kb[m] += ha * yb[m]
				}
			}
		}
		vjp(t+tab.c[i]*h, ytmp[i], kb, w.tmp)
		copy(w.k[i], w.tmp) // k_i is no longer needed: keep Ȳ_i there
	}
	for i := 0; i < s; i++ {
		for m := range ybar {
			ybar[m] += w.k[i][m]
		}
	}
	return nfe
}
