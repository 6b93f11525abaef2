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

func TestLogisticMixtureCouplingConformance(t *testing.T) {
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		// The suite's default perturbation, N(0, 0.2²) on every
		// parameter, moves the mixture well away from the identity (the
		// components separate, their scales and weights differ), for Tanh
		// nets. ReLU nets (He-initialised, unbounded) have hidden outputs
		// several times larger, so the same perturbation of the last
		// layer gives conditioner outputs of order 1–3: a ≈ −3 with a
		// wide component, where the map's slope is e^{−10} and the
		// inverse's derivatives grow like e^{10n}, so the suite's fixed
		// central-difference step (1e-5) is off by up to a factor 2 while
		// the analytic gradient is right (steps of 1e-7 agree with it;
		// TestLogisticMixtureCouplingSteepGradients checks those cases
		// with finer, extrapolated differences). ReLU nets are perturbed
		// by N(0, 0.1²), still far from the identity.
		perturb := perturbBy(0.2)
		if act == flows.ReLU {
			perturb = perturbBy(0.1)
		}
		for _, hidden := range [][]int{{8}, {8, 8}} {
			for _, dim := range []int{2, 3, 5} {
				for _, k := range []int{1, 2, 4} {
					flowstest.TestBijection(t, flowstest.Bijection{
						Name:    fmt.Sprintf("LogisticMixtureCoupling/%v/%v/dim=%d/K=%d", act, hidden, dim, k),
						Init:    flows.LogisticMixtureCoupling(flows.MLP(hidden, act), k),
						Dim:     dim,
						Rows:    6,
						Perturb: perturb,
					})
				}
			}
		}
	}
	net := flows.MLP([]int{8, 8}, flows.Tanh)
	for _, c := range []flowstest.Bijection{
		// Both halves transformed, through a permutation.
		{Name: "Serial(LMC,Reverse,LMC)/dim=2", Init: flows.Serial(flows.LogisticMixtureCoupling(net, 3), flows.Reverse(), flows.LogisticMixtureCoupling(net, 3)), Dim: 2},
		{Name: "Serial(LMC,Reverse,LMC)/dim=5", Init: flows.Serial(flows.LogisticMixtureCoupling(net, 2), flows.Reverse(), flows.LogisticMixtureCoupling(net, 4)), Dim: 5},
		// The sampling direction as the density direction.
		{Name: "Invert(LMC)/dim=3", Init: flows.Invert(flows.LogisticMixtureCoupling(net, 3)), Dim: 3},
		// Many components: the scratch no longer fits on the stack.
		{Name: "LogisticMixtureCoupling/K=20", Init: flows.LogisticMixtureCoupling(flows.MLP([]int{8}, flows.Tanh), 20), Dim: 2},
		// Wider inputs: the tails, where the map is affine.
		{Name: "LogisticMixtureCoupling/wide inputs", Init: flows.LogisticMixtureCoupling(net, 3), Dim: 3, Inputs: lmcScaledNormal(30)},
	} {
		flowstest.TestBijection(t, c)
	}
}

// TestLogisticMixtureCouplingSteepGradients checks both pullbacks where
// the map is steep and flat (parameters perturbed by N(0, 0.2²) with ReLU
// nets, and by N(0, 1) with Tanh nets: slopes from e^{−10} to e^{10}, and
// plateaus between separated components), against Richardson-extrapolated
// central differences with steps down to 1e-9, which resolve the
// inverse's large curvature there.
func TestLogisticMixtureCouplingSteepGradients(t *testing.T) {
	for _, c := range []struct {
		name string
		act  flows.Activation
		dim  int
		k    int
		sd   float64
	}{
		{"ReLU/K=2", flows.ReLU, 3, 2, 0.2},
		{"ReLU/K=4", flows.ReLU, 2, 4, 0.2},
		{"Tanh/K=3/large", flows.Tanh, 4, 3, 1},
		{"Tanh/K=1/large", flows.Tanh, 3, 1, 1},
	} {
		p0, bj, err := flows.LogisticMixtureCoupling(flows.MLP([]int{8, 8}, c.act), c.k)(flows.NewKey(20260101), c.dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := perturbBy(c.sd)(flows.NewKey(3), p0)
		x := lmcScaledNormal(1)(flows.NewKey(2), 8, c.dim)
		for _, inverse := range []bool{false, true} {
			fwd, vjp, in, what := bj.Direct, bj.DirectVJP, x, c.name+"/Direct"
			if inverse {
				fwd, vjp, what = bj.Inverse, bj.InverseVJP, c.name+"/Inverse"
				in, _ = bj.Direct(p, x, nil)
			}
			fineGradCheck(t, what, fwd, vjp, p, in)
		}
	}
}

// lmcScaledNormal returns an Inputs function drawing normal entries of
// standard deviation sd.
func lmcScaledNormal(sd float64) func(flows.Key, int, int) *mat.Dense {
	return func(key flows.Key, n, dim int) *mat.Dense {
		rng := key.Rand()
		x := mat.NewDense(n, dim, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, sd*rng.NormFloat64())
			}
		}
		return x
	}
}

// TestLogisticMixtureCouplingDistribution checks a two-coupling stack as a
// density at dim 2: it integrates to one and its samples follow it.
func TestLogisticMixtureCouplingDistribution(t *testing.T) {
	net := flows.MLP([]int{8}, flows.Tanh)
	flowstest.TestDistribution(t, flowstest.Distribution{
		Name: "Flow(Serial(LMC,Reverse,LMC),Normal)/dim=2",
		Init: flows.Flow(flows.Serial(flows.LogisticMixtureCoupling(net, 3), flows.Reverse(), flows.LogisticMixtureCoupling(net, 3)), flows.Normal()),
		Dim:  2,
	})
}

// TestLogisticMixtureCouplingIdentityAtInit: the MLP's zero last layer
// gives K equal logistic components at μ = 0, s = 1 (so F = σ), a = b = 0,
// and logit(σ(x)) = x: the identity, up to rounding.
func TestLogisticMixtureCouplingIdentityAtInit(t *testing.T) {
	vs := []float64{0, 5e-324, -1e-300, 1e-8, 0.25, -1, 2.5, -7, 30, -36, 100, -745, 1e3, -1e6, 1e300, -1e300}
	for _, dim := range []int{2, 3, 6} {
		for _, k := range []int{1, 3, 5} {
			p, bj, err := flows.LogisticMixtureCoupling(flows.MLP([]int{16, 16}, flows.ReLU), k)(flows.NewKey(4), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			x := lmcPairs(vs, dim)
			for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64){"Direct": bj.Direct, "Inverse": bj.Inverse} {
				z, ld := f(p, x, nil)
				n, _ := x.Dims()
				for i := 0; i < n; i++ {
					for j := 0; j < dim; j++ {
						// log F and log(1 − F) (or 2·atanh(2F − 1) near
						// F = ½) each round, as does log w = −log K: a few
						// ulps of max(|x|, log K, 1).
						v := x.At(i, j)
						if d := math.Abs(z.At(i, j) - v); d > 8*0x1p-52*max(1, math.Abs(v), math.Log(float64(k))) {
							t.Fatalf("dim %d, K=%d, %s: [%d,%d] maps %v to %v at init, want the identity", dim, k, name, i, j, v, z.At(i, j))
						}
					}
					if math.Abs(ld[i]) > 1e-14*float64(dim) {
						t.Fatalf("dim %d, K=%d, %s: log-det[%d] = %g at init, want 0", dim, k, name, i, ld[i])
					}
				}
			}
		}
	}
}

// lmcPairs returns rows that pair every value with every other in the
// first and last columns (the conditioning and the transformed halves),
// the middle columns cycling through the values.
func lmcPairs(vs []float64, dim int) *mat.Dense {
	n := len(vs) * len(vs)
	x := mat.NewDense(n, dim, nil)
	for a := range vs {
		for b := range vs {
			r := a*len(vs) + b
			for j := 0; j < dim; j++ {
				x.Set(r, j, vs[(a+b+j)%len(vs)])
			}
			x.Set(r, 0, vs[a])
			x.Set(r, dim-1, vs[b])
		}
	}
	return x
}

// lmcRefColumn evaluates one column's map from its conditioner outputs
// th = [π (K) | μ (K) | ŝ (K) | â | b], in the plain Flow++ form, for
// moderate values.
func lmcRefColumn(th []float64, x float64) (y, ld float64) {
	k := (len(th) - 2) / 3
	var z float64
	for _, v := range th[:k] {
		z += math.Exp(v)
	}
	sig := func(t float64) float64 { return 1 / (1 + math.Exp(-t)) }
	var F, G, f float64
	for i := range k {
		w := math.Exp(th[i]) / z
		s := math.Exp(7 * math.Tanh(th[2*k+i]/7))
		t := (x - th[k+i]) / s
		F += w * sig(t)
		G += w * sig(-t)
		f += w * sig(t) * sig(-t) / s
	}
	a := 3 * math.Tanh(th[3*k]/3)
	return math.Log(F/G)*math.Exp(a) + th[3*k+1], math.Log(f) - math.Log(F) - math.Log(G) + a
}

// TestLogisticMixtureCouplingFormula checks the layer against the Flow++
// formula with the documented conditioner layout, using a one-layer MLP
// (y = x1·W + b) whose weights and bias we set.
func TestLogisticMixtureCouplingFormula(t *testing.T) {
	const dim, k = 5, 3
	d1, d2 := dim/2, dim-dim/2
	w := 3*k + 2
	p, bj, err := flows.LogisticMixtureCoupling(flows.MLP(nil, flows.Tanh), k)(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != d1*d2*w+d2*w {
		t.Fatalf("%d parameters, want %d (one affine layer %d → %d)", len(p), d1*d2*w+d2*w, d1, d2*w)
	}
	rng := flows.NewKey(2).Rand()
	for i := range p {
		p[i] = 0.7 * rng.NormFloat64()
	}
	x := lmcScaledNormal(2)(flows.NewKey(3), 7, dim)
	z, ld := bj.Direct(p, x, nil)
	xb, ild := bj.Inverse(p, z, nil)
	for r := 0; r < 7; r++ {
		x1 := x.RawRowView(r)[:d1]
		out := make([]float64, d2*w) // x1·W + b, W row-major d1×(d2·w)
		copy(out, p[d1*d2*w:])
		for i, v := range x1 {
			for c := range out {
				out[c] += v * p[i*d2*w+c]
			}
		}
		var wantLD float64
		for j := 0; j < d1; j++ {
			if z.At(r, j) != x.At(r, j) {
				t.Fatalf("row %d: conditioning column %d changed", r, j)
			}
		}
		for j := 0; j < d2; j++ {
			// Column j's block: [π | μ | ŝ | â | b] at [j·w, (j+1)·w).
			y, l := lmcRefColumn(out[j*w:(j+1)*w], x.At(r, d1+j))
			wantLD += l
			if got := z.At(r, d1+j); math.Abs(got-y) > 1e-10*max(1, math.Abs(y)) {
				t.Fatalf("row %d column %d: z = %v, formula %v", r, j, got, y)
			}
			// The inverse: 1e-13 relative from the solver, amplified by
			// at most e^{10} (the inverse slope) times the output's
			// rounding.
			if got := xb.At(r, d1+j); math.Abs(got-x.At(r, d1+j)) > 1e-10*max(1, math.Abs(x.At(r, d1+j))) {
				t.Fatalf("row %d column %d: inverse %v, want %v", r, j, got, x.At(r, d1+j))
			}
		}
		if math.Abs(ld[r]-wantLD) > 1e-10*max(1, math.Abs(wantLD)) || math.Abs(ild[r]+wantLD) > 1e-10*max(1, math.Abs(wantLD)) {
			t.Fatalf("row %d: log-det %v (inverse %v), formula %v", r, ld[r], ild[r], wantLD)
		}
	}
}

func TestLogisticMixtureCouplingInitErrors(t *testing.T) {
	mlp := flows.MLP([]int{4}, flows.Tanh)
	for _, c := range []struct {
		init flows.InitFunc
		dim  int
		want string
	}{
		{flows.LogisticMixtureCoupling(mlp, 2), 1, "dimension 1"},
		{flows.LogisticMixtureCoupling(nil, 2), 2, "nil net"},
		{flows.LogisticMixtureCoupling(mlp, 0), 2, "0 components"},
		{flows.LogisticMixtureCoupling(mlp, -3), 2, "-3 components"},
		{flows.LogisticMixtureCoupling(flows.MLP([]int{0}, flows.Tanh), 2), 2, "hidden"},
	} {
		_, _, err := c.init(flows.NewKey(1), c.dim, 0)
		if err == nil {
			t.Errorf("want an error about %q, got none", c.want)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "flows: LogisticMixtureCoupling: ") || !strings.Contains(msg, c.want) {
			t.Errorf("error %q, want a \"flows: LogisticMixtureCoupling: \" error about %q", msg, c.want)
		}
	}
	_, _, err := flows.Serial(flows.Reverse(), flows.LogisticMixtureCoupling(mlp, 0))(flows.NewKey(1), 3, 0)
	if err == nil || !strings.Contains(err.Error(), "Serial layer 1") {
		t.Errorf("Serial: error %v, want one naming layer 1", err)
	}
}

func TestLogisticMixtureCouplingPanics(t *testing.T) {
	p, bj, err := flows.LogisticMixtureCoupling(flows.MLP([]int{4}, flows.Tanh), 2)(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"width":  func() { bj.Direct(p, mat.NewDense(2, 4, nil), nil) },
		"params": func() { bj.Inverse(p[1:], mat.NewDense(2, 3, nil), nil) },
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.HasPrefix(fmt.Sprint(r), "flows: LogisticMixtureCoupling") {
					t.Errorf("%s: panic %v, want a flows: LogisticMixtureCoupling panic", name, r)
				}
			}()
			f()
		}()
	}
}

// lmcExtremeParams returns parameter vectors for the robustness tests:
// initial, perturbed, and with the last layer's weights (the final lastW
// entries before the lastB biases) set to ±v or v for v = 1e3 (and 1e8
// when huge is set), with and without biases ±v.
func lmcExtremeParams(p flows.Params, lastW, lastB int, huge bool) map[string]flows.Params {
	perturb := func(seed uint64) flows.Params {
		rng := flows.NewKey(seed).Rand()
		q := slices.Clone(p)
		for i := range q {
			q[i] += 0.5 * rng.NormFloat64()
		}
		return q
	}
	out := map[string]flows.Params{"init": slices.Clone(p), "perturbed": perturb(31)}
	rng := flows.NewKey(32).Rand()
	w0 := len(p) - lastB - lastW
	vs := []float64{1e3}
	if huge {
		vs = append(vs, 1e8)
	}
	for _, v := range vs {
		signed := perturb(33)
		equal := slices.Clone(signed)
		for i := w0; i < w0+lastW; i++ {
			signed[i] = v * float64(1-2*rng.IntN(2))
			equal[i] = v
		}
		withBias := slices.Clone(signed)
		for i := w0 + lastW; i < len(p); i++ {
			withBias[i] = v * float64(1-2*rng.IntN(2))
		}
		out[fmt.Sprintf("W=±%g", v)] = signed
		out[fmt.Sprintf("W=%g", v)] = equal
		out[fmt.Sprintf("W,b=±%g", v)] = withBias
	}
	return out
}

// lmcCheckFinite runs all four functions of bj at p on x and checks that
// every output and log-det is finite, and, when gradsToo, every input and
// parameter gradient; and that the round trip holds for every row, in the
// mixed sense: each entry of Inverse(Direct(x)) is within 1e-9·max(1, |x|)
// of x, or Direct maps it to within 1e-9·max(1, |z|) of z. The second
// covers plateaus of the map between narrow, far-apart components (which
// huge conditioner weights make), where many x share one float64 z and the
// inverse may return any of them.
func lmcCheckFinite(t *testing.T, what string, bj flows.Bijection, p flows.Params, x *mat.Dense, gradsToo bool) {
	t.Helper()
	n, dim := x.Dims()
	dz := lmcScaledNormal(1)(flows.NewKey(41), n, dim)
	dl := make([]float64, n)
	for i := range dl {
		dl[i] = 1 - 2*float64(i%2)
	}
	z, ld := bj.Direct(p, x, nil)
	finiteMat(t, what+": Direct", z, ld)
	xi, ild := bj.Inverse(p, x, nil)
	finiteMat(t, what+": Inverse", xi, ild)
	for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback){"DirectVJP": bj.DirectVJP, "InverseVJP": bj.InverseVJP} {
		out, l, back := f(p, x, nil)
		finiteMat(t, what+": "+name, out, l)
		dp := make(flows.Params, len(p))
		dx := back(dz, dl, dp, nil)
		if gradsToo {
			finiteMat(t, what+": "+name+" pullback", dx, dp)
		}
	}
	xb, _ := bj.Inverse(p, z, nil)
	zb, _ := bj.Direct(p, xb, nil)
	for r := 0; r < n; r++ {
		for j := 0; j < dim; j++ {
			v, w := x.At(r, j), z.At(r, j)
			if math.Abs(xb.At(r, j)-v) > 1e-9*max(1, math.Abs(v)) && math.Abs(zb.At(r, j)-w) > 1e-9*max(1, math.Abs(w)) {
				t.Fatalf("%s: round trip of row %d: %v → %v → %v (→ %v)", what, r, x.RawRowView(r), z.RawRowView(r), xb.RawRowView(r), zb.RawRowView(r))
			}
		}
	}
}

// TestLogisticMixtureCouplingExtremes: finite outputs, log-dets and
// gradients, and the round trip, for inputs up to ±1e300, with conditioner
// nets whose last layer has huge weights (so the scales saturate at e^{±7},
// the affine scale at e^{±3}, the weights become one-hot and the means
// spread over thousands).
func TestLogisticMixtureCouplingExtremes(t *testing.T) {
	vs := []float64{0, 1, -1, 0.3, -2.5, 30, -30, 1e3, -1e3, 1e6, -1e6, 1e300, -1e300, 5e-324, -5e-324}
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		for _, dim := range []int{2, 3} {
			for _, k := range []int{2, 3} {
				const hidden = 8
				d1, d2 := dim/2, dim-dim/2
				w := 3*k + 2
				p0, bj, err := flows.LogisticMixtureCoupling(flows.MLP([]int{hidden, hidden}, act), k)(flows.NewKey(5), dim, 0)
				if err != nil {
					t.Fatal(err)
				}
				x := lmcPairs(vs, dim)
				// Tanh bounds the hidden activations, so the conditioner's
				// outputs are at most ~8·|W| whatever x1: 1e8 weights are
				// within the contract (means up to ~1e9). ReLU passes x1
				// = ±1e300 through at full size: the outputs reach ~1e304
				// with 1e3 weights, within float64, but the net's own
				// pullback multiplies the gradient by those activations,
				// so only moderate x1 promise finite gradients there.
				for name, p := range lmcExtremeParams(p0, hidden*d2*w, d2*w, act == flows.Tanh) {
					what := fmt.Sprintf("%v/dim=%d/K=%d/%s", act, dim, k, name)
					if act == flows.Tanh {
						lmcCheckFinite(t, what, bj, p, x, true)
						continue
					}
					lmcCheckFinite(t, what+"/moderate x1", bj, p, rowsWithin(x, 0, d1, 1e6), true)
					lmcCheckFinite(t, what+"/huge x1", bj, p, rowsWithin(x, 0, d1, 1e300), false)
				}
			}
		}
	}
}

// TestLogisticMixtureCouplingNoNaN: no finite input gives a NaN output,
// log-det or gradient of a transformed column, even at ±MaxFloat64 with
// huge conditioner outputs, where the exact results exceed float64 and
// some are ±Inf. (The gradients of the conditioning columns go through the
// net's pullback, which can itself turn such an infinite gradient into
// NaN, as Inf·0 with a zero last layer: they are not checked.)
func TestLogisticMixtureCouplingNoNaN(t *testing.T) {
	vs := []float64{0, 1, -1e3, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		const dim, d1, k, hidden = 2, 1, 2, 4
		p0, bj, err := flows.LogisticMixtureCoupling(flows.MLP([]int{hidden}, act), k)(flows.NewKey(6), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		x := lmcPairs(vs, dim)
		for name, p := range lmcExtremeParams(p0, hidden*(3*k+2), 3*k+2, true) {
			dz := lmcScaledNormal(1)(flows.NewKey(7), len(vs)*len(vs), dim)
			dl := make([]float64, len(vs)*len(vs))
			for i := range dl {
				dl[i] = 1
			}
			for fname, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback){"DirectVJP": bj.DirectVJP, "InverseVJP": bj.InverseVJP} {
				out, l, back := f(p, x, nil)
				dp := make(flows.Params, len(p))
				dx := back(dz, dl, dp, nil)
				for i := range dl {
					for j := 0; j < dim; j++ {
						if math.IsNaN(out.At(i, j)) || j >= d1 && math.IsNaN(dx.At(i, j)) {
							t.Fatalf("%v/%s/%s: row %d: NaN output or input gradient", act, name, fname, i)
						}
					}
				}
				for _, v := range l {
					if math.IsNaN(v) {
						t.Fatalf("%v/%s/%s: NaN log-det", act, name, fname)
					}
				}
				// dp, the net's gradient, is not checked: a ReLU net
				// fed ±MaxFloat64 overflows by itself (Inf − Inf in its
				// own pullback).
			}
		}
	}
}

// BenchmarkLMCCouplingStep times one training step (NLL, gradient, Adam)
// of a Flow++-style coupling flow: 8 logistic-mixture couplings with K = 4
// alternating halves (Reverse between), conditioner MLP [128, 128] ReLU,
// at dim 8 with a batch of 256.
func BenchmarkLMCCouplingStep(b *testing.B) {
	benchStep(b, flows.Flow(lmcCouplingStack(8, 128, 4), flows.Normal()), 8, 256)
}

// BenchmarkLMCCouplingSample times drawing 256 samples from the same flow
// (the inverse: a root solve per transformed entry).
func BenchmarkLMCCouplingSample(b *testing.B) {
	benchSample(b, flows.Flow(lmcCouplingStack(8, 128, 4), flows.Normal()), 8, 256)
}

func lmcCouplingStack(couplings, hidden, k int) flows.InitFunc {
	var layers []flows.InitFunc
	for i := 0; i < couplings; i++ {
		layers = append(layers, flows.LogisticMixtureCoupling(flows.MLP([]int{hidden, hidden}, flows.ReLU), k), flows.Reverse())
	}
	return flows.Serial(layers...)
}
