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

func TestNeuralSplineAutoregressiveConformance(t *testing.T) {
	orders := []flows.Order{flows.NaturalOrder, flows.ReversedOrder, flows.RandomOrder}
	var cases []flowstest.Bijection
	n := 0
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		// As for the coupling (see TestNeuralSplineCouplingConformance):
		// the suite's perturbation for Tanh, a smaller one for ReLU nets,
		// whose larger activations otherwise make splines so steep that
		// the suite's fixed difference step cannot resolve the inverse.
		sd := 0.2
		if act == flows.ReLU {
			sd = 0.1
		}
		for _, dim := range []int{1, 2, 4} {
			for _, bins := range []int{4, 8} {
				for _, bound := range []float64{3, 1.5} {
					order := orders[n%len(orders)]
					n++
					cfg := flows.MADEConfig{Hidden: []int{8, 8}, Act: act, Order: order}
					cases = append(cases, flowstest.Bijection{
						Name:    fmt.Sprintf("NeuralSplineAutoregressive/%v/%v/dim=%d/K=%d/B=%g", act, order, dim, bins, bound),
						Init:    flows.NeuralSplineAutoregressive(cfg, flows.SplineConfig{Bins: bins, Bound: bound}),
						Dim:     dim,
						Rows:    8,
						Perturb: perturbBy(sd),
					})
				}
			}
		}
	}
	spline := flows.SplineConfig{Bins: 5, Bound: 2, MinBinWidth: 0.01, MinBinHeight: 0.02, MinDerivative: 0.05}
	tanh := flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh, Order: flows.RandomOrder}
	cases = append(cases,
		// No hidden layer (a masked affine conditioner), SiLU, and
		// hidden layers narrower than dim−1.
		flowstest.Bijection{Name: "NeuralSplineAutoregressive/affine/dim=3", Init: flows.NeuralSplineAutoregressive(flows.MADEConfig{}, spline), Dim: 3},
		flowstest.Bijection{Name: "NeuralSplineAutoregressive/SiLU/dim=3", Init: flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{7, 5}, Act: flows.SiLU}, spline), Dim: 3},
		flowstest.Bijection{Name: "NeuralSplineAutoregressive/narrow/dim=5", Init: flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{2, 3}, Act: flows.Tanh, Order: flows.RandomOrder}, spline), Dim: 5},
		// The inverse autoregressive spline flow trains through InverseVJP.
		flowstest.Bijection{Name: "Invert(NeuralSplineAutoregressive)/dim=3", Init: flows.Invert(flows.NeuralSplineAutoregressive(tanh, spline)), Dim: 3},
		flowstest.Bijection{Name: "Serial(NSAR,Reverse,NSAR)/dim=3", Init: flows.Serial(flows.NeuralSplineAutoregressive(tanh, spline), flows.Reverse(), flows.NeuralSplineAutoregressive(tanh, spline)), Dim: 3},
	)
	for _, c := range cases {
		flowstest.TestBijection(t, c)
	}
}

// TestNeuralSplineAutoregressiveDistribution checks RQ-NSF (AR) flows as
// densities in one and two dimensions: they integrate to one and their
// samples follow them.
func TestNeuralSplineAutoregressiveDistribution(t *testing.T) {
	made := flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.Tanh}
	cfg := flows.SplineConfig{Bins: 6, Bound: 3}
	for _, c := range []flowstest.Distribution{
		{Name: "Flow(NSAR,Normal)/dim=1", Init: flows.Flow(flows.NeuralSplineAutoregressive(made, cfg), flows.Normal()), Dim: 1},
		{Name: "Flow(Serial(NSAR,Reverse,NSAR),Normal)/dim=2", Init: flows.Flow(flows.Serial(flows.NeuralSplineAutoregressive(made, cfg), flows.Reverse(), flows.NeuralSplineAutoregressive(made, cfg)), flows.Normal()), Dim: 2},
	} {
		flowstest.TestDistribution(t, c)
	}
}

// TestNeuralSplineAutoregressiveIdentityAtInit: the MADE's zero last layer
// gives θ = 0, the identity up to rounding.
func TestNeuralSplineAutoregressiveIdentityAtInit(t *testing.T) {
	for _, dim := range []int{1, 2, 7} {
		for _, order := range []flows.Order{flows.NaturalOrder, flows.RandomOrder} {
			bound := 2.0
			p, bj, err := flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{16, 16}, Act: flows.ReLU, Order: order}, flows.SplineConfig{Bins: 8, Bound: bound})(flows.NewKey(9), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			x := nsfGrid(dim, bound)
			for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64){"Direct": bj.Direct, "Inverse": bj.Inverse} {
				z, ld := f(p, x, nil)
				nsfCheckIdentity(t, fmt.Sprintf("dim %d, %v: %s", dim, order, name), x, z, ld, bound)
			}
		}
	}
}

// TestNeuralSplineAutoregressiveFormula checks Direct against the
// reference spline, the knots of input i read from a separate MADE made
// with the same key at columns k·dim + i, and Inverse against dim passes
// of the plain fixed-point scheme x ← g⁻¹(z; θ(x)) (after pass t the
// first t positions of the ordering are exact), with g⁻¹ taken from a
// dim-1 layer whose knots are set to θ.
func TestNeuralSplineAutoregressiveFormula(t *testing.T) {
	for _, c := range []struct {
		dim, bins int
		bound     float64
		made      flows.MADEConfig
	}{
		{1, 4, 2, flows.MADEConfig{Hidden: []int{3}, Act: flows.Tanh}},
		{3, 5, 3, flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.ReLU, Order: flows.RandomOrder}},
		{4, 8, 1.5, flows.MADEConfig{Hidden: []int{6}, Act: flows.SiLU, Order: flows.ReversedOrder}},
		{6, 3, 3, flows.MADEConfig{Hidden: []int{10, 10}, Act: flows.Tanh, Order: flows.RandomOrder}},
	} {
		name := fmt.Sprintf("dim=%d/K=%d/%v", c.dim, c.bins, c.made.Order)
		cfg := flows.SplineConfig{Bins: c.bins, Bound: c.bound}
		P := cfg.NumParams()
		key := flows.NewKey(51)
		p, bj, err := flows.NeuralSplineAutoregressive(c.made, cfg)(key, c.dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		pm, net, err := flows.MADE(c.made)(key, c.dim, P*c.dim)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p, pm) {
			t.Fatalf("%s: the layer's parameters differ from MADE's with the same key", name)
		}
		p = perturbBy(0.3)(flows.NewKey(52), p)
		const n = 7
		theta := func(y *mat.Dense, r, i int) []float64 {
			th := make([]float64, P)
			for k := range th {
				th[k] = y.At(r, k*c.dim+i)
			}
			return th
		}

		x := nsfNormal(flows.NewKey(53), n, c.dim, 1)
		z, ld := bj.Direct(p, x, nil)
		y := net.Apply(p, x)
		for r := 0; r < n; r++ {
			sum := 0.0
			for i := 0; i < c.dim; i++ {
				want, l := nsfRefSpline(theta(y, r, i), c.bins, c.bound, x.At(r, i))
				// Same formula in another arrangement: a few ulps of B.
				if got := z.At(r, i); math.Abs(got-want) > 1e-12*c.bound {
					t.Errorf("%s: z[%d,%d] = %.17g, reference %.17g", name, r, i, got, want)
				}
				sum += l
			}
			if math.Abs(ld[r]-sum) > 1e-11 {
				t.Errorf("%s: log-det[%d] = %.17g, reference %.17g", name, r, ld[r], sum)
			}
		}

		// g⁻¹ of one spline: a dim-1 layer with no hidden layer, whose
		// output (its knots) is its last biases, set to θ.
		p1, one, err := flows.NeuralSplineAutoregressive(flows.MADEConfig{}, cfg)(key, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		inv1 := func(th []float64, v float64) (float64, float64) {
			q := slices.Clone(p1)
			copy(q[len(q)-P:], th)
			xo, l := one.Inverse(q, mat.NewDense(1, 1, []float64{v}), nil)
			return xo.At(0, 0), l[0]
		}
		zi := nsfNormal(flows.NewKey(54), n, c.dim, 1)
		xi := mat.NewDense(n, c.dim, nil)
		lds := make([]float64, n)
		for pass := 0; pass < c.dim; pass++ {
			y := net.Apply(p, xi)
			next := mat.NewDense(n, c.dim, nil)
			for r := 0; r < n; r++ {
				lds[r] = 0
				for i := 0; i < c.dim; i++ {
					v, l := inv1(theta(y, r, i), zi.At(r, i))
					next.Set(r, i, v)
					lds[r] += l
				}
			}
			xi = next
		}
		got, ild := bj.Inverse(p, zi, nil)
		for r := 0; r < n; r++ {
			for i := 0; i < c.dim; i++ {
				// The incremental MADE sums the same products in another
				// order than the dense one: a few ulps of θ, moved into x
				// by the spline's conditioning (O(1)–O(10) here).
				if want := xi.At(r, i); math.Abs(got.At(r, i)-want) > 1e-12*math.Max(1, math.Abs(want)) {
					t.Errorf("%s: Inverse x[%d,%d] = %.17g, fixed point %.17g", name, r, i, got.At(r, i), want)
				}
			}
			if math.Abs(ild[r]-lds[r]) > 1e-11 {
				t.Errorf("%s: Inverse log-det[%d] = %.17g, fixed point %.17g", name, r, ild[r], lds[r])
			}
		}
	}
}

func TestNeuralSplineAutoregressiveInitErrors(t *testing.T) {
	ok := flows.MADEConfig{Hidden: []int{4}}
	for _, c := range []struct {
		init flows.InitFunc
		dim  int
		want string
	}{
		{flows.NeuralSplineAutoregressive(ok, flows.SplineConfig{}), 0, "dimension 0"},
		{flows.NeuralSplineAutoregressive(ok, flows.SplineConfig{Bins: 1}), 2, "Bins"},
		{flows.NeuralSplineAutoregressive(ok, flows.SplineConfig{Bound: math.Inf(1)}), 2, "Bound"},
		{flows.NeuralSplineAutoregressive(ok, flows.SplineConfig{MinBinHeight: -1}), 2, "MinBinHeight"},
		{flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{0}}, flows.SplineConfig{}), 2, "hidden"},
		{flows.NeuralSplineAutoregressive(flows.MADEConfig{Order: flows.Order(7)}, flows.SplineConfig{}), 2, "order"},
		{flows.NeuralSplineAutoregressive(flows.MADEConfig{Act: flows.Activation(9)}, flows.SplineConfig{}), 2, "activation"},
	} {
		_, _, err := c.init(flows.NewKey(1), c.dim, 0)
		if err == nil {
			t.Errorf("want an error about %q, got none", c.want)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "flows: NeuralSplineAutoregressive: ") || !strings.Contains(msg, c.want) {
			t.Errorf("error %q, want a \"flows: NeuralSplineAutoregressive: \" error about %q", msg, c.want)
		}
	}
}

// TestNeuralSplineAutoregressiveCopiesHidden: changing the caller's
// Hidden slice after the constructor has no effect.
func TestNeuralSplineAutoregressiveCopiesHidden(t *testing.T) {
	hidden := []int{4}
	init := flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: hidden}, flows.SplineConfig{})
	p1, _, _ := init(flows.NewKey(1), 3, 0)
	hidden[0] = 40
	p2, _, _ := init(flows.NewKey(1), 3, 0)
	if len(p1) != len(p2) {
		t.Fatalf("parameters changed from %d to %d with the caller's slice", len(p1), len(p2))
	}
}

func TestNeuralSplineAutoregressivePanics(t *testing.T) {
	p, bj, err := flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{4}}, flows.SplineConfig{})(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"width":  func() { bj.Direct(p, mat.NewDense(2, 4, nil), nil) },
		"params": func() { bj.Inverse(p[1:], mat.NewDense(2, 3, nil), nil) },
		"pullback": func() {
			_, _, back := bj.InverseVJP(p, mat.NewDense(2, 3, nil), nil)
			back(mat.NewDense(3, 3, nil), make([]float64, 2), make(flows.Params, len(p)), nil)
		},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.HasPrefix(fmt.Sprint(r), "flows: NeuralSplineAutoregressive") {
					t.Errorf("%s: panic %v, want a flows: NeuralSplineAutoregressive panic", name, r)
				}
			}()
			f()
		}()
	}
}

// TestNeuralSplineAutoregressiveExtremes: finite outputs, log-dets and
// gradients for inputs far outside [−B, B], at ±B and at knots, with
// MADEs whose last layer has huge weights.
func TestNeuralSplineAutoregressiveExtremes(t *testing.T) {
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		for _, dim := range []int{1, 2, 3} {
			const bins, bound, hidden = 4, 3.0, 8
			cfg := flows.SplineConfig{Bins: bins, Bound: bound}
			P := cfg.NumParams()
			made := flows.MADEConfig{Hidden: []int{hidden, hidden}, Act: act}
			p0, bj, err := flows.NeuralSplineAutoregressive(made, cfg)(flows.NewKey(5), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, net, _ := flows.MADE(made)(flows.NewKey(5), dim, P*dim)
			x := nsfExtremeBatch(nsfExtremeValues(bound, bins), dim)
			for name, p := range nsfExtremeParams(p0, hidden*P*dim, P*dim) {
				what := fmt.Sprintf("%v/dim=%d/%s", act, dim, name)
				moderate := name == "init" || name == "perturbed"
				// The backward error Direct(Inverse(z)) − z: a few ulps
				// of B for moderate parameters. With huge weights the
				// knot parameters of input i are ~1e8-sized numbers
				// computed by the dense MADE pass (Direct) and the
				// incremental one (Inverse) in different summation
				// orders, which depend on the matrix kernel: they differ
				// by ~1e-8 absolute or more, and the softmax over logits
				// spread by ~1e8 turns that into knot shifts of up to
				// ~1e-5·B (2e-5·B measured with gonum's kernel). 1e-3·B
				// still catches a wrong bin, branch or input; precision
				// at ordinary parameters is the conformance suite's job.
				bwd := 1e-12
				if !moderate {
					bwd = 1e-3
				}
				// As for the coupling: ReLU nets on inputs of 1e300
				// overflow inside the MADE, whose own pullback then gives
				// NaN weight gradients, so only Tanh promises finite
				// gradients for every input; the round trip in x holds to
				// rounding only where the knots are moderate.
				tol := 0.0
				if moderate && act == flows.Tanh {
					tol = 1e-9
				}
				// A ReLU MADE that overflows (inputs ~1e300) also breaks
				// the dense pass's autoregressive structure: a masked
				// weight is 0 and 0·Inf is NaN, so outputs that should
				// not see an overflowing input are NaN (read as 0) in
				// Direct but not in Inverse's incremental pass, which
				// skips masked weights. Outputs stay finite, but Inverse
				// then does not undo Direct exactly on those rows: the
				// backward check is for Tanh only there.
				full := bwd
				if act != flows.Tanh {
					full = 0
				}
				nsfCheckFinite(t, what, bj, p, x, bound, tol, full, act == flows.Tanh)
				// With ReLU and huge weights, inputs up to 1e6 give knot
				// parameters up to ~1e16, whose rounding (O(1) absolute,
				// different in the dense and incremental passes) moves
				// knots by O(B): only finiteness is promised there.
				bwd6 := bwd
				if !moderate && act != flows.Tanh {
					bwd6 = 0
				}
				nsfCheckFinite(t, what+"/x≤1e6", bj, p, rowsWithin(x, 0, dim, 1e6), bound, tol, bwd6, true)
				if moderate {
					tol = 1e-9
				}
				nsfCheckFinite(t, what+"/x≤10", bj, p, rowsWithin(x, 0, dim, 10), bound, tol, bwd, true)
				// Rows built to sit exactly on knots put some ReLU
				// pre-activations at rounding level, where the dense and
				// incremental passes (different summation orders) can
				// fall on opposite sides of the kink: log g′ then differs
				// by ~1e-8 relative (measured with gonum's kernel).
				bwdK := bwd
				if act != flows.Tanh {
					bwdK = max(bwd, 1e-8)
				}
				nsfCheckFinite(t, what+"/knots", bj, p, nsfARKnotRows(net, p, dim, bins, bound), bound, tol, bwdK, true)
			}
		}
	}
}

// nsfARKnotRows returns rows whose entries sit exactly on the x-knots (and
// their neighbouring floats) of their splines, for a MADE in the natural
// order: entry i is set after entries 0, …, i−1, from the knots the MADE
// gives for them. Direct maps x-knots exactly onto y-knots, so the round
// trip of these rows exercises Inverse at knots too.
func nsfARKnotRows(net flows.Net, p flows.Params, dim, bins int, bound float64) *mat.Dense {
	var rows []float64
	for k := 0; k <= bins; k++ {
		for _, dir := range []float64{0, math.Inf(1), math.Inf(-1)} {
			for shift := 0; shift < 3; shift++ {
				row := make([]float64, dim)
				for i := 0; i < dim; i++ {
					y := net.Apply(p, mat.NewDense(1, dim, slices.Clone(row)))
					th := make([]float64, bins)
					for j := range th {
						th[j] = y.At(0, j*dim+i)
						switch v := th[j]; {
						case math.IsNaN(v):
							th[j] = 0
						case math.IsInf(v, 0):
							th[j] = math.Copysign(math.MaxFloat64, v)
						}
					}
					q := nsfKnots(th, bound)[(k+shift*i)%(bins+1)]
					if dir != 0 {
						q = math.Nextafter(q, dir)
					}
					row[i] = q
				}
				rows = append(rows, row...)
			}
		}
	}
	return mat.NewDense(len(rows)/dim, dim, rows)
}

// BenchmarkNSFARStep times one training step (NLL, gradient, Adam) of an
// RQ-NSF (AR) flow: 8 autoregressive spline layers with MADE [128, 128]
// ReLU, Reverse between them, 8 bins, B = 3, at dim 8 with a batch of 256.
func BenchmarkNSFARStep(b *testing.B) {
	benchStep(b, flows.Flow(nsfARStack(8, 128), flows.Normal()), 8, 256)
}

// BenchmarkNSFARSample times drawing 10,000 points from that flow (dim
// sequential steps per layer).
func BenchmarkNSFARSample(b *testing.B) {
	benchSample(b, flows.Flow(nsfARStack(8, 128), flows.Normal()), 8, 10000)
}

// nsfARStack is the benchmarks' RQ-NSF (AR).
func nsfARStack(layers, hidden int) flows.InitFunc {
	var ls []flows.InitFunc
	for i := range layers {
		if i > 0 {
			ls = append(ls, flows.Reverse())
		}
		ls = append(ls, flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{hidden, hidden}, Act: flows.ReLU}, flows.SplineConfig{Bins: 8, Bound: 3}))
	}
	return flows.Serial(ls...)
}
