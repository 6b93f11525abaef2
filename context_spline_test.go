package flows_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

// The conditional spline and mixture layers use Tanh conditioners only,
// with the suite's default perturbation (N(0, 0.2²) on every parameter):
// as TestNeuralSplineCouplingConformance explains, ReLU nets under that
// perturbation give splines so steep that the suite's fixed difference
// step cannot resolve the inverse.

func TestCondNeuralSplineCouplingConformance(t *testing.T) {
	cfg := flows.SplineConfig{Bins: 4, Bound: 3}
	for _, dim := range []int{2, 3} {
		for _, cdim := range []int{1, 3} {
			for _, hidden := range [][]int{{8}, {8, 8}} {
				flowstest.TestBijection(t, flowstest.Bijection{
					Name:       fmt.Sprintf("CondNeuralSplineCoupling/dim=%d/context=%d/hidden=%v", dim, cdim, hidden),
					Init:       flows.NeuralSplineCoupling(flows.MLP(hidden, flows.Tanh), cfg),
					Dim:        dim,
					ContextDim: cdim,
				})
			}
		}
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondNeuralSplineCoupling/one-hot",
		Init:       flows.NeuralSplineCoupling(flows.MLP([]int{8}, flows.Tanh), cfg),
		Dim:        3,
		ContextDim: 3,
		Contexts:   oneHot,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondInvert(CondNeuralSplineCoupling)",
		Init:       flows.Invert(flows.NeuralSplineCoupling(flows.MLP([]int{8}, flows.Tanh), cfg)),
		Dim:        3,
		ContextDim: 2,
	})
}

func TestCondLogisticMixtureCouplingConformance(t *testing.T) {
	for _, dim := range []int{2, 3} {
		for _, cdim := range []int{1, 3} {
			for _, hidden := range [][]int{{8}, {8, 8}} {
				flowstest.TestBijection(t, flowstest.Bijection{
					Name:       fmt.Sprintf("CondLogisticMixtureCoupling/dim=%d/context=%d/hidden=%v", dim, cdim, hidden),
					Init:       flows.LogisticMixtureCoupling(flows.MLP(hidden, flows.Tanh), 3),
					Dim:        dim,
					ContextDim: cdim,
				})
			}
		}
	}
}

func TestCondNeuralSplineAutoregressiveConformance(t *testing.T) {
	cfg := flows.SplineConfig{Bins: 4, Bound: 3}
	orders := []flows.Order{flows.NaturalOrder, flows.ReversedOrder, flows.RandomOrder}
	n := 0
	for _, dim := range []int{1, 2, 3} {
		for _, cdim := range []int{1, 3} {
			for _, hidden := range [][]int{nil, {8}, {8, 8}} {
				order := orders[n%len(orders)]
				n++
				flowstest.TestBijection(t, flowstest.Bijection{
					Name:       fmt.Sprintf("CondNeuralSplineAutoregressive/dim=%d/context=%d/hidden=%v/%v", dim, cdim, hidden, order),
					Init:       flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: hidden, Act: flows.Tanh, Order: order}, cfg),
					Dim:        dim,
					ContextDim: cdim,
					Rows:       8,
				})
			}
		}
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondNeuralSplineAutoregressive/SiLU/one-hot",
		Init:       flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{7}, Act: flows.SiLU, Order: flows.RandomOrder}, cfg),
		Dim:        4,
		ContextDim: 3,
		Contexts:   oneHot,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondInvert(CondNeuralSplineAutoregressive)",
		Init:       flows.Invert(flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh}, cfg)),
		Dim:        3,
		ContextDim: 2,
	})
}

func TestCondSplineFlowConformance(t *testing.T) {
	cfg := flows.SplineConfig{Bins: 4, Bound: 3}
	net := flows.MLP([]int{8}, flows.Tanh)
	flowstest.TestDistribution(t, flowstest.Distribution{
		Name: "CondFlow(CondNeuralSplineCoupling)", Dim: 2, ContextDim: 2,
		Init: flows.Flow(flows.Serial(
			flows.NeuralSplineCoupling(net, cfg),
			flows.Reverse(),
			flows.NeuralSplineCoupling(net, cfg),
		), flows.Normal()),
	})
	flowstest.TestDistribution(t, flowstest.Distribution{
		Name: "CondFlow(CondNeuralSplineAutoregressive)", Dim: 2, ContextDim: 2,
		Init: flows.Flow(flows.Serial(
			flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh}, cfg),
			flows.Reverse(),
			flows.LogisticMixtureCoupling(net, 2),
		), flows.Normal()),
	})
}

// condSplineLayers are the three new layers, for the shared tests below.
func condSplineLayers() []struct {
	name string
	init flows.InitFunc
} {
	cfg := flows.SplineConfig{Bins: 4, Bound: 3}
	return []struct {
		name string
		init flows.InitFunc
	}{
		{"NeuralSplineCoupling", flows.NeuralSplineCoupling(flows.MLP([]int{8, 8}, flows.ReLU), cfg)},
		{"LogisticMixtureCoupling", flows.LogisticMixtureCoupling(flows.MLP([]int{8}, flows.Tanh), 4)},
		{"NeuralSplineAutoregressive", flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.ReLU, Order: flows.RandomOrder}, cfg)},
	}
}

// TestCondSplineIdentityAtInit: the conditioners start with zero output
// for every context, so each layer starts as the identity (up to a few
// ulps) with log-det ≈ 0, for random contexts, including large ones.
func TestCondSplineIdentityAtInit(t *testing.T) {
	for _, l := range condSplineLayers() {
		for _, cdim := range []int{1, 3} {
			const dim, n = 3, 20
			p, b, err := l.init(flows.NewKey(5), dim, cdim)
			if err != nil {
				t.Fatal(err)
			}
			rng := flows.NewKey(uint64(6 + cdim)).Rand()
			x := mat.NewDense(n, dim, nil)
			c := mat.NewDense(n, cdim, nil)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					x.Set(i, j, 2*rng.NormFloat64())
				}
				for j := 0; j < cdim; j++ {
					c.Set(i, j, 10*rng.NormFloat64())
				}
			}
			for _, dir := range []string{"Direct", "Inverse"} {
				var z *mat.Dense
				var ld []float64
				if dir == "Direct" {
					z, ld = b.Direct(p, x, c)
				} else {
					z, ld = b.Inverse(p, x, c)
				}
				for i := 0; i < n; i++ {
					for j := 0; j < dim; j++ {
						if d := math.Abs(z.At(i, j) - x.At(i, j)); d > 1e-13*math.Max(1, math.Abs(x.At(i, j))) {
							t.Errorf("%s/context=%d: %s not the identity at init: row %d col %d: %g vs %g", l.name, cdim, dir, i, j, z.At(i, j), x.At(i, j))
						}
					}
					if math.Abs(ld[i]) > 1e-12 {
						t.Errorf("%s/context=%d: %s log-det %g at init, want 0", l.name, cdim, dir, ld[i])
					}
				}
			}
		}
	}
}

// TestCondSplineDependsOnContext: once the parameters move off init, the
// output depends on the context, for every input position (the first
// input of the AR layer's ordering through the direct context weights).
func TestCondSplineDependsOnContext(t *testing.T) {
	for _, l := range condSplineLayers() {
		const dim = 3
		p, b, err := l.init(flows.NewKey(5), dim, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p {
			p[i] += 0.1 * float64(i%7-3)
		}
		x := mat.NewDense(1, dim, []float64{0.3, -0.2, 0.5})
		za, _ := b.Direct(p, x, mat.NewDense(1, 1, []float64{0}))
		zb, _ := b.Direct(p, x, mat.NewDense(1, 1, []float64{1}))
		start := 0
		if !strings.Contains(l.name, "Autoregressive") {
			start = dim / 2 // the coupling's pass-through half is the identity
		}
		for j := start; j < dim; j++ {
			if za.At(0, j) == zb.At(0, j) {
				t.Errorf("%s: z_%d does not depend on the context", l.name, j)
			}
		}
	}
}

// TestCondNeuralSplineAutoregressiveLayout checks the documented layout:
// the unconditional layer's parameters (the same values for the same key)
// followed by the context weights, and, with those weights zero, exactly
// the unconditional layer's maps.
func TestCondNeuralSplineAutoregressiveLayout(t *testing.T) {
	cfg := flows.SplineConfig{Bins: 4, Bound: 3}
	const dim, cdim, h = 3, 2, 5
	P := cfg.NumParams()
	for _, hidden := range [][]int{nil, {h}} {
		made := flows.MADEConfig{Hidden: hidden, Act: flows.Tanh, Order: flows.RandomOrder}
		pu, bu, err := flows.NeuralSplineAutoregressive(made, cfg)(flows.NewKey(3), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		pc, bc, err := flows.NeuralSplineAutoregressive(made, cfg)(flows.NewKey(3), dim, cdim)
		if err != nil {
			t.Fatal(err)
		}
		want := len(pu) + cdim*P*dim
		if hidden != nil {
			want += cdim * h
		}
		if len(pc) != want {
			t.Fatalf("hidden=%v: %d parameters, want %d", hidden, len(pc), want)
		}
		if !slices.Equal(pc[:len(pu)], pu) {
			t.Fatalf("hidden=%v: the leading parameters differ from the unconditional layer's", hidden)
		}
		rng := flows.NewKey(8).Rand()
		for i := range pu {
			pu[i] += 0.3 * rng.NormFloat64()
		}
		copy(pc, pu)
		clear(pc[len(pu):])
		x := mat.NewDense(4, dim, []float64{0.1, -1, 2, 1.5, 0.3, -0.7, -2.5, 2.9, 0, 4, -0.2, 1})
		c := mat.NewDense(4, cdim, []float64{1, -2, 0.5, 3, -1, 0, 7, 7})
		zu, lu := bu.Direct(pu, x, nil)
		zc, lc := bc.Direct(pc, x, c)
		if !mat.Equal(zu, zc) || !slices.Equal(lu, lc) {
			t.Errorf("hidden=%v: Direct with zero context weights differs from the unconditional layer", hidden)
		}
		xu, lu := bu.Inverse(pu, x, nil)
		xc, lc := bc.Inverse(pc, x, c)
		if !mat.EqualApprox(xu, xc, 1e-14) || !slices.EqualFunc(lu, lc, func(a, b float64) bool { return math.Abs(a-b) < 1e-13 }) {
			t.Errorf("hidden=%v: Inverse with zero context weights differs from the unconditional layer", hidden)
		}
		// With every context weight zero, nothing depends on c: dc = 0.
		_, _, back := bc.DirectVJP(pc, x, c)
		dz := mat.NewDense(4, dim, nil)
		dz.Apply(func(i, j int, v float64) float64 { return float64(i - j) }, dz)
		dc := mat.NewDense(4, cdim, nil)
		back(dz, []float64{1, 1, 1, 1}, make(flows.Params, len(pc)), dc)
		if !mat.Equal(dc, mat.NewDense(4, cdim, nil)) {
			t.Errorf("hidden=%v: dc = %v with zero context weights, want 0", hidden, mat.Formatted(dc))
		}
	}
}

func TestCondSplineInitErrors(t *testing.T) {
	net := flows.MLP([]int{4}, flows.Tanh)
	made := flows.MADEConfig{Hidden: []int{4}, Act: flows.Tanh}
	cases := []struct {
		name     string
		init     flows.InitFunc
		dim, cd  int
		contains string
	}{
		{"nsc/dim", flows.NeuralSplineCoupling(net, flows.SplineConfig{}), 1, 1, "flows: NeuralSplineCoupling: dimension 1"},
		{"nsc/net", flows.NeuralSplineCoupling(nil, flows.SplineConfig{}), 2, 1, "flows: NeuralSplineCoupling: nil net"},
		{"nsc/cfg", flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: -1}), 2, 1, "flows: NeuralSplineCoupling:"},
		{"lmix/dim", flows.LogisticMixtureCoupling(net, 2), 1, 1, "flows: LogisticMixtureCoupling: dimension 1"},
		{"lmix/net", flows.LogisticMixtureCoupling(nil, 2), 2, 1, "flows: LogisticMixtureCoupling: nil net"},
		{"lmix/components", flows.LogisticMixtureCoupling(net, 0), 2, 1, "0 components, want at least 1"},
		{"nsar/dim", flows.NeuralSplineAutoregressive(made, flows.SplineConfig{}), 0, 1, "flows: NeuralSplineAutoregressive: dimension 0"},
		{"nsar/cfg", flows.NeuralSplineAutoregressive(made, flows.SplineConfig{Bins: -1}), 2, 1, "flows: NeuralSplineAutoregressive:"},
		{"nsar/made", flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{0}}, flows.SplineConfig{}), 2, 1, "flows: NeuralSplineAutoregressive:"},
	}
	for _, c := range cases {
		_, _, err := c.init(flows.NewKey(1), c.dim, c.cd)
		if err == nil || !strings.Contains(err.Error(), c.contains) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.contains)
		}
	}
}

// TestCondSplinePanics: a context of the wrong shape panics with the
// layer's name.
func TestCondSplinePanics(t *testing.T) {
	for _, l := range condSplineLayers() {
		p, b, err := l.init(flows.NewKey(1), 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		x := mat.NewDense(2, 3, nil)
		for _, c := range []*mat.Dense{mat.NewDense(2, 3, nil), mat.NewDense(3, 2, nil), nil} {
			for _, fn := range []func(){
				func() { b.Direct(p, x, c) },
				func() { b.Inverse(p, x, c) },
				func() { b.DirectVJP(p, x, c) },
				func() { b.InverseVJP(p, x, c) },
			} {
				func() {
					defer func() {
						r := recover()
						if s, ok := r.(string); !ok || !strings.HasPrefix(s, "flows: "+l.name+":") {
							t.Errorf("%s: panic %v, want one starting %q", l.name, r, "flows: "+l.name+":")
						}
					}()
					fn()
				}()
			}
		}
	}
}
