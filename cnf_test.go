package flows_test

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// A continuous normalizing flow fitted with optim.Fit like any flow, with
// the number of function evaluations of its dynamics counted by the Stats
// hook.
func ExampleCNF() {
	var nfe atomic.Int64
	cnf := flows.CNF(flows.CNFConfig{
		Hidden: []int{16},
		Solver: flows.ODESolver{RTol: 1e-4, ATol: 1e-4},
		Stats:  func(s flows.CNFStats) { nfe.Add(int64(s.NFE)) },
	})
	params, model, err := flows.Flow(cnf, flows.Normal())(flows.NewKey(0), 2, 0)
	if err != nil {
		panic(err)
	}
	// Data: a correlated Gaussian of entropy 2.55 nats (the lowest mean
	// NLL a model can reach).
	rng := flows.NewKey(1).Rand()
	x := mat.NewDense(512, 2, nil)
	for i := 0; i < 512; i++ {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		x.Set(i, 0, 1.5*a)
		x.Set(i, 1, 0.8*a+0.5*b)
	}
	before, _ := optim.NLLValue(model, params, x, nil)
	_, err = optim.Fit(flows.NewKey(2), model, params, x, nil, optim.FitConfig{Epochs: 15, BatchSize: 64, LR: 2e-2, ValFraction: -1})
	if err != nil {
		panic(err)
	}
	after, _ := optim.NLLValue(model, params, x, nil)
	fmt.Printf("NLL %.2f before, below 2.65 after: %v; dynamics evaluated: %v\n", before, after < 2.65, nfe.Load() > 0)
	// Output:
	// NLL 3.45 before, below 2.65 after: true; dynamics evaluated: true
}

// TestCNFFitReproducible checks that training through optim.Fit lowers
// the NLL and gives the same parameters, bit for bit, on a second run,
// with each of the gradient modes and Hutchinson's estimator.
func TestCNFFitReproducible(t *testing.T) {
	rng := flows.NewKey(5).Rand()
	x := mat.NewDense(256, 2, nil)
	for i := 0; i < 256; i++ {
		a := rng.NormFloat64()
		x.Set(i, 0, 2*a)
		x.Set(i, 1, a*a-1+0.3*rng.NormFloat64())
	}
	for _, cfg := range []flows.CNFConfig{
		{Hidden: []int{16}, Solver: flows.ODESolver{RTol: 1e-4, ATol: 1e-4}},
		{Hidden: []int{16}, Solver: flows.ODESolver{Method: flows.RK4, Steps: 8}, Gradient: flows.BackpropSteps, Trace: flows.TraceHutchinson},
	} {
		fit := func() (flows.Params, float64, float64) {
			p, d, err := flows.Flow(flows.CNF(cfg), flows.Normal())(flows.NewKey(0), 2, 0)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := optim.NLLValue(d, p, x, nil)
			if _, err := optim.Fit(flows.NewKey(2), d, p, x, nil, optim.FitConfig{Epochs: 6, BatchSize: 64, LR: 1e-2, ValFraction: -1}); err != nil {
				t.Fatal(err)
			}
			after, _ := optim.NLLValue(d, p, x, nil)
			return p, before, after
		}
		p1, before, after := fit()
		p2, _, _ := fit()
		if !slices.Equal(p1, p2) {
			t.Errorf("%v/%v: two fits differ", cfg.Solver.Method, cfg.Trace)
		}
		if !(after < before-0.2) || math.IsNaN(after) {
			t.Errorf("%v/%v: NLL %.4f before, %.4f after", cfg.Solver.Method, cfg.Trace, before, after)
		}
	}
}

// TestCNFGOMAXPROCS checks that a DOPRI5 pass and its adjoint pullback
// give the same bits on one and on several processors.
func TestCNFGOMAXPROCS(t *testing.T) {
	p, bj, err := flows.CNF(flows.CNFConfig{Hidden: []int{32, 32}})(flows.NewKey(0), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(1).Rand()
	for i := range p {
		p[i] += 0.3 * rng.NormFloat64()
	}
	x, c := mat.NewDense(300, 3, nil), mat.NewDense(300, 1, nil)
	for i := 0; i < 300; i++ {
		x.SetRow(i, []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()})
		c.Set(i, 0, rng.NormFloat64())
	}
	run := func() []float64 {
		z, ld, back := bj.DirectVJP(p, x, c)
		dz := mat.DenseCopyOf(z)
		dp := make(flows.Params, len(p))
		dx := back(dz, ld, dp, nil)
		return slices.Concat(z.RawMatrix().Data, ld, dx.RawMatrix().Data, dp)
	}
	prev := runtime.GOMAXPROCS(1)
	one := run()
	runtime.GOMAXPROCS(max(2, prev))
	many := run()
	runtime.GOMAXPROCS(prev)
	if !slices.Equal(one, many) {
		t.Error("GOMAXPROCS 1 and several give different bits")
	}
}
