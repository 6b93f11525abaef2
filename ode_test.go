package flows_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
)

// rotation is y' = (−y₂, y₁), y(t) = (cos t, sin t) from (1, 0).
func rotation(_ float64, y, dy []float64) { dy[0], dy[1] = -y[1], y[0] }

// gaussian is y' = −2ty, y(t) = exp(−t²) from y(0) = 1.
func gaussian(t float64, y, dy []float64) { dy[0] = -2 * t * y[0] }

func solveErr(t *testing.T, s flows.ODESolver, f flows.ODEFunc, t0, t1 float64, y0, want []float64) (float64, flows.ODEStats) {
	t.Helper()
	y, st, err := s.Solve(f, t0, t1, y0)
	if err != nil {
		t.Fatal(err)
	}
	var e float64
	for i := range y {
		e = max(e, math.Abs(y[i]-want[i]))
	}
	return e, st
}

// TestRK4Order checks that RK4's global error falls 16-fold (fourth order)
// when the steps double, forwards and backwards in time.
func TestRK4Order(t *testing.T) {
	for _, t1 := range []float64{2, -2} {
		want := []float64{math.Cos(t1), math.Sin(t1)}
		var prev float64
		for i, n := range []int{10, 20, 40, 80} {
			e, st := solveErr(t, flows.ODESolver{Method: flows.RK4, Steps: n}, rotation, 0, t1, []float64{1, 0}, want)
			if st.NFE != 4*n || st.Steps != n {
				t.Errorf("%d steps: stats %+v, want %d evaluations", n, st, 4*n)
			}
			if i > 0 {
				if r := prev / e; r < 14 || r > 18 {
					t.Errorf("t1 = %v: error ratio %.2f from %d to %d steps, want about 16", t1, r, n/2, n)
				}
			}
			prev = e
		}
	}
}

// TestDOPRI5Tolerance checks that DOPRI5 meets its tolerance on problems
// with known solutions, in both directions, with fewer steps for looser
// tolerances and the error shrinking with the tolerance.
func TestDOPRI5Tolerance(t *testing.T) {
	cases := []struct {
		name   string
		f      flows.ODEFunc
		t0, t1 float64
		y0     []float64
		want   []float64
	}{
		{"rotation", rotation, 0, 10, []float64{1, 0}, []float64{math.Cos(10), math.Sin(10)}},
		{"rotation-backwards", rotation, 0, -10, []float64{1, 0}, []float64{math.Cos(-10), math.Sin(-10)}},
		{"gaussian", gaussian, 0, 3, []float64{1}, []float64{math.Exp(-9)}},
	}
	for _, c := range cases {
		prevSteps := 0
		prevErr := math.Inf(1)
		for _, tol := range []float64{1e-4, 1e-6, 1e-8, 1e-10} {
			e, st := solveErr(t, flows.ODESolver{RTol: tol, ATol: tol}, c.f, c.t0, c.t1, c.y0, c.want)
			// The controller bounds the local error per step; the
			// global error over these intervals stays within 10·tol.
			if e > 10*tol {
				t.Errorf("%s: tol %g: error %g", c.name, tol, e)
			}
			if e >= prevErr || st.Steps <= prevSteps {
				t.Errorf("%s: tol %g: error %g after %g, steps %d after %d", c.name, tol, e, prevErr, st.Steps, prevSteps)
			}
			if st.NFE != 2+6*(st.Steps+st.Rejected) {
				t.Errorf("%s: stats %+v: want 2 + 6 evaluations per step tried", c.name, st)
			}
			prevErr, prevSteps = e, st.Steps
		}
	}
}

// TestODEDeterministic checks that the same solve gives the same bits and
// counts, and that y0 is not modified.
func TestODEDeterministic(t *testing.T) {
	y0 := []float64{0.3, -1.2}
	vdp := func(_ float64, y, dy []float64) { dy[0], dy[1] = y[1], 2*(1-y[0]*y[0])*y[1]-y[0] }
	for _, s := range []flows.ODESolver{{RTol: 1e-7, ATol: 1e-9}, {Method: flows.RK4, Steps: 50}} {
		a, sa, err := s.Solve(vdp, 0, 5, y0)
		if err != nil {
			t.Fatal(err)
		}
		b, sb, _ := s.Solve(vdp, 0, 5, y0)
		if !slices.Equal(a, b) || sa != sb {
			t.Errorf("%v: two solves differ: %v %+v, %v %+v", s.Method, a, sa, b, sb)
		}
		if y0[0] != 0.3 || y0[1] != -1.2 {
			t.Errorf("%v: y0 modified: %v", s.Method, y0)
		}
	}
}

// TestODEBudget checks the error contract: a solve past MaxSteps, and one
// whose derivative is NaN, return errors wrapping ErrODE; bad settings are
// errors too.
func TestODEBudget(t *testing.T) {
	_, st, err := flows.ODESolver{MaxSteps: 5, RTol: 1e-10, ATol: 1e-10}.Solve(rotation, 0, 100, []float64{1, 0})
	if !errors.Is(err, flows.ErrODE) || st.Steps+st.Rejected != 5 {
		t.Errorf("budget: err %v, stats %+v", err, st)
	}
	nan := func(_ float64, _, dy []float64) { dy[0] = math.NaN() }
	if _, _, err := (flows.ODESolver{}).Solve(nan, 0, 1, []float64{1}); !errors.Is(err, flows.ErrODE) {
		t.Errorf("NaN derivative: err %v", err)
	}
	for _, s := range []flows.ODESolver{{RTol: -1}, {ATol: math.NaN()}, {Method: 7}, {Steps: -1}, {MaxSteps: -2}} {
		if _, _, err := s.Solve(rotation, 0, 1, []float64{1, 0}); err == nil || errors.Is(err, flows.ErrODE) {
			t.Errorf("%+v: err %v, want a settings error", s, err)
		}
	}
	// A pure relative tolerance (ATol 0) with a component that stays 0.
	zero := func(_ float64, y, dy []float64) { dy[0], dy[1] = -y[0], 0 }
	if y, _, err := (flows.ODESolver{RTol: 1e-8}).Solve(zero, 0, 1, []float64{1, 0}); err != nil || math.Abs(y[0]-math.Exp(-1)) > 1e-7 || y[1] != 0 {
		t.Errorf("ATol 0: %v, %v", y, err)
	}
	y, st, err := flows.ODESolver{}.Solve(rotation, 1, 1, []float64{1, 0})
	if err != nil || st.NFE != 0 || y[0] != 1 {
		t.Errorf("empty interval: %v %+v %v", y, st, err)
	}
}
