package flows_test

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// TestCouplingOneLayout checks that a coupling preset is Coupling over its
// transformer, parameter for parameter: the same initial parameters, and
// the same outputs, log-dets and gradients, bit for bit, at parameters
// away from the identity, with and without a context. CircularCoupling
// without angles is NeuralSplineCoupling too.
func TestCouplingOneLayout(t *testing.T) {
	mlp := flows.MLP([]int{6}, flows.Tanh)
	spline := flows.SplineConfig{Bins: 5, Bound: 2.5}
	cases := []struct {
		name         string
		preset, base flows.InitFunc
	}{
		{"NeuralSplineCoupling", flows.NeuralSplineCoupling(mlp, spline), flows.Coupling(mlp, flows.Spline(spline))},
		{"AffineCouplingBound", flows.AffineCouplingBound(mlp, 2), flows.Coupling(mlp, flows.Affine(2))},
		{"AffineCoupling", flows.AffineCoupling(mlp), flows.Coupling(mlp, flows.Affine(3))},
		{"AdditiveCoupling", flows.AdditiveCoupling(mlp), flows.Coupling(mlp, flows.Shift())},
		{"LogisticMixtureCoupling", flows.LogisticMixtureCoupling(mlp, 3), flows.Coupling(mlp, flows.LogisticMixture(3))},
		{"CircularCoupling/no-angles", flows.CircularCoupling(mlp, flows.CircularConfig{Bins: 5, Bound: 2.5}), flows.NeuralSplineCoupling(mlp, spline)},
	}
	for _, tc := range cases {
		for _, cdim := range []int{0, 2} {
			t.Run(tc.name, func(t *testing.T) {
				a, b := couplingRun(t, tc.preset, cdim), couplingRun(t, tc.base, cdim)
				for k := range a {
					if !slices.EqualFunc(a[k], b[k], func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }) {
						t.Fatalf("context %d: result %d differs:\n%v\n%v", cdim, k, a[k], b[k])
					}
				}
			})
		}
	}
}

// couplingRun returns what a layer on 5 columns computes: its initial
// parameters, then at perturbed parameters Direct's and Inverse's outputs
// and log-dets and both pullbacks' gradients.
func couplingRun(t *testing.T, init flows.InitFunc, cdim int) [][]float64 {
	t.Helper()
	const n, dim = 6, 5
	p0, b, err := init(flows.NewKey(3), dim, cdim)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(4).Rand()
	p := slices.Clone(p0)
	for i := range p {
		p[i] += 0.4 * rng.NormFloat64()
	}
	batch := func(c int) *mat.Dense {
		m := mat.NewDense(n, c, nil)
		for i := range n {
			for j := range c {
				m.Set(i, j, 1.5*rng.NormFloat64())
			}
		}
		return m
	}
	var ctx, dc *mat.Dense
	if cdim > 0 {
		ctx, dc = batch(cdim), mat.NewDense(n, cdim, nil)
	}
	x, g := batch(dim), batch(dim)
	gl := mat.Col(nil, 0, batch(1))
	z, ld, back := b.DirectVJP(p, x, ctx)
	dp := make(flows.Params, len(p))
	dx := back(g, gl, dp, dc)
	xi, ild, iback := b.InverseVJP(p, x, ctx)
	idp := make(flows.Params, len(p))
	idx := iback(g, gl, idp, dc)
	out := [][]float64{p0, z.RawMatrix().Data, ld, dx.RawMatrix().Data, dp, xi.RawMatrix().Data, ild, idx.RawMatrix().Data, idp}
	if dc != nil {
		out = append(out, dc.RawMatrix().Data)
	}
	return out
}
