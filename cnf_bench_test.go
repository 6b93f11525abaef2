package flows_test

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// BenchmarkCNFStep times one training step (the NLL's forward solve and
// its pullback) of a 2-D CNF, 2×64 tanh, exact trace, batch 256, at
// perturbed parameters, with RK4's 20 steps so that every run does the same
// work (80 evaluations forwards, 80 backwards).
func BenchmarkCNFStep(b *testing.B) {
	for _, g := range []struct {
		name string
		mode flows.CNFGradient
	}{{"adjoint", flows.Adjoint}, {"backprop", flows.BackpropSteps}} {
		b.Run("dim=2/hidden=64x64/batch=256/"+g.name, func(b *testing.B) {
			cfg := flows.CNFConfig{Hidden: []int{64, 64}, Solver: flows.ODESolver{Method: flows.RK4, Steps: 20}, Gradient: g.mode}
			p, d, err := flows.Flow(flows.CNF(cfg), flows.Normal())(flows.NewKey(0), 2, 0)
			if err != nil {
				b.Fatal(err)
			}
			rng := flows.NewKey(1).Rand()
			for i := range p {
				p[i] += 0.1 * rng.NormFloat64()
			}
			x := mat.NewDense(256, 2, nil)
			for i := 0; i < 256; i++ {
				x.Set(i, 0, 2*rng.NormFloat64())
				x.Set(i, 1, 2*rng.NormFloat64())
			}
			grad := make([]float64, len(p))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := optim.NLL(d, p, x, nil, grad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
