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

// nsfMinFrac is the default MinBinWidth, MinBinHeight and MinDerivative,
// which the reference spline below assumes.
const nsfMinFrac = 1e-3

func TestNeuralSplineCouplingConformance(t *testing.T) {
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		// The suite's default perturbation, N(0, 0.2²) on every
		// parameter, for Tanh nets. ReLU nets (He-initialised, unbounded)
		// have hidden outputs several times larger, so the same
		// perturbation of the last layer gives knot parameters of order
		// 2–3 and, with 8 bins, places where g′ ≈ 1e-4: there the
		// inverse's curvature (∝ g″/g′³) is so large that the suite's
		// fixed central-difference step (1e-5) is off by up to 30%,
		// while the analytic gradient is right (steps of 1e-7 agree with
		// it to 1e-7; see TestNeuralSplineSteepGradients, which checks
		// those cases with a finer, extrapolated difference). So ReLU
		// nets are perturbed by N(0, 0.1²), still far from the identity.
		sd := 0.2
		if act == flows.ReLU {
			sd = 0.1
		}
		for _, dim := range []int{2, 3, 5} {
			for _, bins := range []int{4, 8} {
				// Bound 3 keeps most of the standard normal test inputs
				// inside the splines; bound 1.5 puts many outside, in
				// the identity tails, so both regimes are checked.
				for _, bound := range []float64{3, 1.5} {
					flowstest.TestBijection(t, flowstest.Bijection{
						Name:    fmt.Sprintf("NeuralSplineCoupling/%v/dim=%d/K=%d/B=%g", act, dim, bins, bound),
						Init:    flows.NeuralSplineCoupling(flows.MLP([]int{8, 8}, act), flows.SplineConfig{Bins: bins, Bound: bound}),
						Dim:     dim,
						Rows:    8,
						Perturb: perturbBy(sd),
					})
				}
			}
		}
	}
	cfg := flows.SplineConfig{Bins: 5, Bound: 2, MinBinWidth: 0.01, MinBinHeight: 0.02, MinDerivative: 0.05}
	net := flows.MLP([]int{8, 8}, flows.Tanh)
	for _, c := range []flowstest.Bijection{
		// Non-default minimums.
		{Name: "NeuralSplineCoupling/custom", Init: flows.NeuralSplineCoupling(net, cfg), Dim: 4},
		// Both halves transformed, through a permutation.
		{Name: "Serial(NSC,Reverse,NSC)/dim=2", Init: flows.Serial(flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: 4}), flows.Reverse(), flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: 4})), Dim: 2},
		{Name: "Serial(NSC,Reverse,NSC)/dim=5", Init: flows.Serial(flows.NeuralSplineCoupling(net, cfg), flows.Reverse(), flows.NeuralSplineCoupling(net, cfg)), Dim: 5},
		{Name: "Invert(NSC)/dim=3", Init: flows.Invert(flows.NeuralSplineCoupling(net, cfg)), Dim: 3},
	} {
		flowstest.TestBijection(t, c)
	}
}

// TestNeuralSplineSteepGradients checks both pullbacks of both spline
// layers where the splines are steep and flat (parameters perturbed by
// N(0, 0.2²) with ReLU nets, and by N(0, 0.5²) to N(0, 1)), against
// Richardson-extrapolated central differences at steps down to 1e-9,
// which resolve the inverse's large curvature there (see
// fineGradCheck).
func TestNeuralSplineSteepGradients(t *testing.T) {
	for _, c := range []struct {
		name string
		init flows.InitFunc
		dim  int
		sd   float64
	}{
		{"NSC/ReLU/K=8/B=3", flows.NeuralSplineCoupling(flows.MLP([]int{8, 8}, flows.ReLU), flows.SplineConfig{Bins: 8, Bound: 3}), 2, 0.2},
		{"NSC/ReLU/K=8/B=1.5", flows.NeuralSplineCoupling(flows.MLP([]int{8, 8}, flows.ReLU), flows.SplineConfig{Bins: 8, Bound: 1.5}), 3, 0.2},
		{"NSC/Tanh/custom/large", flows.NeuralSplineCoupling(flows.MLP([]int{8, 8}, flows.Tanh), flows.SplineConfig{Bins: 5, Bound: 2, MinBinWidth: 0.01, MinBinHeight: 0.02, MinDerivative: 0.05}), 4, 1},
		{"NSAR/ReLU/K=8/large", flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.ReLU}, flows.SplineConfig{Bins: 8, Bound: 3}), 3, 0.5},
		{"NSAR/Tanh/K=6/large", flows.NeuralSplineAutoregressive(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh, Order: flows.RandomOrder}, flows.SplineConfig{Bins: 6, Bound: 2}), 4, 1},
	} {
		p0, bj, err := c.init(flows.NewKey(20260101), c.dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := perturbBy(c.sd)(flows.NewKey(3), p0)
		x := nsfNormal(flows.NewKey(2), 8, c.dim, 1)
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

// TestNeuralSplineCouplingDistribution checks a two-coupling RQ-NSF as a
// density at dim 2: it integrates to one and its samples follow it.
func TestNeuralSplineCouplingDistribution(t *testing.T) {
	net := flows.MLP([]int{8, 8}, flows.Tanh)
	cfg := flows.SplineConfig{Bins: 6, Bound: 3}
	flowstest.TestDistribution(t, flowstest.Distribution{
		Name: "Flow(Serial(NSC,Reverse,NSC),Normal)/dim=2",
		Init: flows.Flow(flows.Serial(flows.NeuralSplineCoupling(net, cfg), flows.Reverse(), flows.NeuralSplineCoupling(net, cfg)), flows.Normal()),
		Dim:  2,
	})
}

// TestNeuralSplineCouplingIdentityAtInit: the MLP's zero last layer gives
// θ = 0, uniform bins and unit slopes, which is the identity in real
// arithmetic.
func TestNeuralSplineCouplingIdentityAtInit(t *testing.T) {
	for _, dim := range []int{2, 3, 6} {
		for _, bound := range []float64{1, 3} {
			p, bj, err := flows.NeuralSplineCoupling(flows.MLP([]int{16, 16}, flows.ReLU), flows.SplineConfig{Bins: 8, Bound: bound})(flows.NewKey(4), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			x := nsfGrid(dim, bound)
			for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64){"Direct": bj.Direct, "Inverse": bj.Inverse} {
				z, ld := f(p, x, nil)
				nsfCheckIdentity(t, fmt.Sprintf("dim %d, B=%g: %s", dim, bound, name), x, z, ld, bound)
			}
		}
	}
}

// nsfGrid returns a batch whose columns sweep [−1.2B, 1.2B], shifted
// per column, with the uniform knots of 8 bins among the values.
func nsfGrid(dim int, bound float64) *mat.Dense {
	const n = 97
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, bound*(-1.2+2.4*float64((i+7*j)%n)/float64(n-1)))
		}
	}
	for k := 0; k <= 8 && k < n; k++ {
		x.Set(k, 0, bound*(-1+2*float64(k)/8))
		x.Set(k, dim-1, bound*(-1+2*float64(k)/8))
	}
	return x
}

// nsfCheckIdentity checks that z = x and ld = 0 up to rounding: the knots,
// the slope shift c₀ and the rational expression each round, so allow a
// few ulps of B (the same tolerance as the scalar spline's own test).
func nsfCheckIdentity(t *testing.T, what string, x, z *mat.Dense, ld []float64, bound float64) {
	t.Helper()
	n, dim := x.Dims()
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			if d := math.Abs(z.At(i, j) - x.At(i, j)); d > 1e-14*bound {
				t.Fatalf("%s: [%d,%d] maps %v to %v at init, want the identity", what, i, j, x.At(i, j), z.At(i, j))
			}
		}
		if math.Abs(ld[i]) > 1e-14*float64(dim) {
			t.Fatalf("%s: log-det[%d] = %g at init, want 0", what, i, ld[i])
		}
	}
}

// nsfSoftmax is the package's softmax, operation for operation.
func nsfSoftmax(src []float64) []float64 {
	m := slices.Max(src)
	dst := make([]float64, len(src))
	var sum float64
	for i, v := range src {
		dst[i] = math.Exp(v - m)
		sum += dst[i]
	}
	inv := 1 / sum
	for i := range dst {
		dst[i] *= inv
	}
	return dst
}

// nsfKnots returns the K+1 knots −B = q_0 < … < q_K = B of one side of the
// spline with unconstrained parameters th (K of them), computed as the
// package does, so that the test can put inputs exactly on them.
func nsfKnots(th []float64, bound float64) []float64 {
	K := len(th)
	p := nsfSoftmax(th)
	scale := 1 - float64(K)*nsfMinFrac
	q := make([]float64, K+1)
	q[0], q[K] = -bound, bound
	var cum float64
	for k := 0; k < K-1; k++ {
		cum += nsfMinFrac + scale*p[k]
		q[k+1] = -bound + 2*bound*cum
	}
	return q
}

// nsfRefSpline is a direct transcription of the rational-quadratic spline
// of Durkan et al. (2019, eqs. 4–5 and the derivative after them), with
// the default minimums: an independent reference for the layers' layout.
// It returns g(x) and log g′(x) for th = [widths | heights | slopes].
func nsfRefSpline(th []float64, K int, bound, x float64) (y, ld float64) {
	if x < -bound || x > bound {
		return x, 0
	}
	xs := nsfKnots(th[:K], bound)
	ys := nsfKnots(th[K:2*K], bound)
	d := make([]float64, K+1)
	d[0], d[K] = 1, 1
	c0 := math.Log(math.Expm1(1 - nsfMinFrac))
	for k := 1; k < K; k++ {
		d[k] = nsfMinFrac + math.Log1p(math.Exp(th[2*K+k-1]+c0))
	}
	k := 0
	for k < K-1 && x >= xs[k+1] {
		k++
	}
	w, h := xs[k+1]-xs[k], ys[k+1]-ys[k]
	s := h / w
	xi := (x - xs[k]) / w
	den := s + (d[k+1]+d[k]-2*s)*xi*(1-xi)
	y = ys[k] + h*(s*xi*xi+d[k]*xi*(1-xi))/den
	gp := s * s * (d[k+1]*xi*xi + 2*s*xi*(1-xi) + d[k]*(1-xi)*(1-xi)) / (den * den)
	return y, math.Log(gp)
}

// TestNeuralSplineCouplingFormula checks Direct against the reference
// spline, with the conditioner's output computed by a separate MLP made
// from the same key (the layer's parameters are exactly the net's): column
// j of x2 uses the contiguous block j of the net's output.
func TestNeuralSplineCouplingFormula(t *testing.T) {
	for _, c := range []struct {
		dim, bins int
		bound     float64
	}{{2, 4, 3}, {3, 8, 1.5}, {5, 3, 2}, {6, 8, 3}} {
		cfg := flows.SplineConfig{Bins: c.bins, Bound: c.bound}
		P := cfg.NumParams()
		key := flows.NewKey(21)
		mlp := flows.MLP([]int{8}, flows.Tanh)
		p, bj, err := flows.NeuralSplineCoupling(mlp, cfg)(key, c.dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		d1, d2 := c.dim/2, c.dim-c.dim/2
		pn, net, err := mlp(key, d1, d2*P)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p, pn) {
			t.Fatalf("dim %d: the layer's parameters differ from its net's", c.dim)
		}
		p = perturbBy(0.5)(flows.NewKey(22), p)
		x := nsfNormal(flows.NewKey(23), 9, c.dim, 1.5)
		z, ld := bj.Direct(p, x, nil)
		x1 := mat.DenseCopyOf(x.Slice(0, 9, 0, d1))
		y := net.Apply(p, x1)
		for r := 0; r < 9; r++ {
			sum := 0.0
			for j := 0; j < d1; j++ {
				if z.At(r, j) != x.At(r, j) {
					t.Fatalf("dim %d: conditioning column %d changed", c.dim, j)
				}
			}
			for j := 0; j < d2; j++ {
				th := y.RawRowView(r)[j*P : (j+1)*P]
				want, l := nsfRefSpline(th, c.bins, c.bound, x.At(r, d1+j))
				// Same formula in another arrangement: a few ulps of B,
				// magnified by at most the conditioning of R = N/D.
				if got := z.At(r, d1+j); math.Abs(got-want) > 1e-12*c.bound {
					t.Errorf("dim %d, K=%d: z[%d,%d] = %.17g, reference %.17g", c.dim, c.bins, r, d1+j, got, want)
				}
				sum += l
			}
			if math.Abs(ld[r]-sum) > 1e-11 {
				t.Errorf("dim %d, K=%d: log-det[%d] = %.17g, reference %.17g", c.dim, c.bins, r, ld[r], sum)
			}
		}
	}
}

// nsfNormal draws an n×dim batch of N(0, scale²) entries.
func nsfNormal(key flows.Key, n, dim int, scale float64) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, scale*rng.NormFloat64())
		}
	}
	return x
}

// TestNeuralSplineCouplingParamsUsed checks that the parameters train: at
// init (the identity) the gradient of a log-likelihood-like loss reaches
// the net's last layer, which jax-flows' version ignored.
func TestNeuralSplineCouplingParamsUsed(t *testing.T) {
	p, bj, err := flows.NeuralSplineCoupling(flows.MLP([]int{8}, flows.ReLU), flows.SplineConfig{})(flows.NewKey(1), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := nsfNormal(flows.NewKey(2), 16, 4, 1)
	z, _, back := bj.DirectVJP(p, x, nil)
	dz := mat.NewDense(16, 4, nil)
	dz.Scale(-1, z) // d/dz of −½|z|²
	dl := make([]float64, 16)
	for i := range dl {
		dl[i] = 1
	}
	dp := make(flows.Params, len(p))
	back(dz, dl, dp, nil)
	// The last layer is the final 8×(2·23) weights and 46 biases.
	last := dp[len(dp)-(8+1)*2*23:]
	nonzero := 0
	for _, v := range last {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero < len(last)/2 {
		t.Fatalf("only %d of %d last-layer gradients are nonzero at init", nonzero, len(last))
	}
}

func TestNeuralSplineCouplingInitErrors(t *testing.T) {
	mlp := flows.MLP([]int{4}, flows.Tanh)
	for _, c := range []struct {
		init flows.InitFunc
		dim  int
		want string
	}{
		{flows.NeuralSplineCoupling(mlp, flows.SplineConfig{}), 1, "dimension 1"},
		{flows.NeuralSplineCoupling(nil, flows.SplineConfig{}), 2, "nil net"},
		{flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 1}), 2, "Bins"},
		{flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bound: -1}), 2, "Bound"},
		{flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 4, MinBinWidth: 0.3}), 2, "MinBinWidth"},
		{flows.NeuralSplineCoupling(mlp, flows.SplineConfig{MinDerivative: 2}), 2, "MinDerivative"},
		{flows.NeuralSplineCoupling(flows.MLP([]int{0}, flows.Tanh), flows.SplineConfig{}), 2, "hidden"},
	} {
		_, _, err := c.init(flows.NewKey(1), c.dim, 0)
		if err == nil {
			t.Errorf("want an error about %q, got none", c.want)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "flows: NeuralSplineCoupling: ") || !strings.Contains(msg, c.want) {
			t.Errorf("error %q, want a \"flows: NeuralSplineCoupling: \" error about %q", msg, c.want)
		}
	}
	// Errors inside a stack name the layer.
	_, _, err := flows.Serial(flows.Reverse(), flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 1}))(flows.NewKey(1), 3, 0)
	if err == nil || !strings.Contains(err.Error(), "Serial layer 1") {
		t.Errorf("Serial: error %v, want one naming layer 1", err)
	}
}

func TestNeuralSplineCouplingPanics(t *testing.T) {
	p, bj, err := flows.NeuralSplineCoupling(flows.MLP([]int{4}, flows.Tanh), flows.SplineConfig{})(flows.NewKey(1), 3, 0)
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
				if r == nil || !strings.HasPrefix(fmt.Sprint(r), "flows: NeuralSplineCoupling") {
					t.Errorf("%s: panic %v, want a flows: NeuralSplineCoupling panic", name, r)
				}
			}()
			f()
		}()
	}
}

// nsfExtremeValues are the finite inputs of the robustness tests, for a
// bound B: far outside [−B, B], at and next to ±B, at the uniform knots,
// tiny, and inside.
func nsfExtremeValues(bound float64, bins int) []float64 {
	vs := []float64{0, 1e6, -1e6, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 5e-324, -5e-324,
		bound, -bound, math.Nextafter(bound, 0), math.Nextafter(-bound, 0),
		math.Nextafter(bound, math.Inf(1)), math.Nextafter(-bound, math.Inf(-1)), 0.3 * bound, -0.7 * bound}
	for _, q := range nsfKnots(make([]float64, bins), bound) {
		vs = append(vs, q, math.Nextafter(q, math.Inf(1)), math.Nextafter(q, math.Inf(-1)))
	}
	return vs
}

// nsfExtremeBatch returns rows that pair every value with every other in
// the first and last columns (the conditioning and the transformed halves
// of a coupling, the first and last inputs of an autoregressive layer),
// the middle columns cycling through the values.
func nsfExtremeBatch(vs []float64, dim int) *mat.Dense {
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

// nsfExtremeParams returns parameter vectors for the robustness tests:
// initial, perturbed, and with the last layer's weights (the final
// lastW entries before the lastB biases) set to ±v and v for
// v = 1e3, 1e8 (random signs, and all equal), and biases ±v too.
func nsfExtremeParams(p flows.Params, lastW, lastB int) map[string]flows.Params {
	out := map[string]flows.Params{"init": slices.Clone(p), "perturbed": perturbBy(0.5)(flows.NewKey(31), p)}
	rng := flows.NewKey(32).Rand()
	w0 := len(p) - lastB - lastW
	for _, v := range []float64{1e3, 1e8} {
		signed := perturbBy(0.5)(flows.NewKey(33), p)
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

// nsfCheckFinite runs all four functions of bj at p on x and checks that
// every output and log-det is finite, and, when gradsToo, the input and
// parameter gradients of both pullbacks too. It then checks the round trip
// x → z → xb: in the forward sense, |xb − x| ≤ fwdTol·max(1, |x|), when
// fwdTol > 0, and in the backward sense, when bwdTol > 0, that Direct(xb) is z to
// bwdTol·max(B, |z|) (for a coupling 1e-12, a few ulps: it holds however
// flat a spline is, where the forward error is the rounding of z amplified
// by 1/g′ ≤ ~1e9),
// with the log-dets of opposite sign (at x and xb in the forward sense, at
// xb in the backward sense; tolerances below).
func nsfCheckFinite(t *testing.T, what string, bj flows.Bijection, p flows.Params, x *mat.Dense, bound, fwdTol, bwdTol float64, gradsToo bool) {
	t.Helper()
	n, dim := x.Dims()
	dz := nsfNormal(flows.NewKey(41), n, dim, 1)
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
	// The log-dets at xb: to 1e-9 when the knots of both passes agree to
	// rounding; when they differ by bwdTol·B (see the AR's extremes),
	// log g′ moves by up to that over the narrowest bin (2e-3·B) per
	// spline, so 100·bwdTol (1e-4 for 1e-6) covers a few splines.
	ldTol := max(1e-9, 100*bwdTol)
	xb, bld := bj.Inverse(p, z, nil)
	zb, ldb := bj.Direct(p, xb, nil)
	for r := 0; r < n; r++ {
		for j := 0; j < dim; j++ {
			v, w := x.At(r, j), z.At(r, j)
			if fwdTol > 0 && math.Abs(xb.At(r, j)-v) > fwdTol*math.Max(1, math.Abs(v)) {
				t.Fatalf("%s: round trip of row %d: %v → %v → %v", what, r, x.RawRowView(r), z.RawRowView(r), xb.RawRowView(r))
			}
			if bwdTol > 0 && math.Abs(zb.At(r, j)-w) > bwdTol*math.Max(bound, math.Abs(w)) {
				t.Fatalf("%s: row %d: %v → %v → %v → %v: Direct(Inverse(z)) is not z", what, r, x.RawRowView(r), z.RawRowView(r), xb.RawRowView(r), zb.RawRowView(r))
			}
		}
		if bwdTol > 0 && math.Abs(bld[r]+ldb[r]) > ldTol*math.Max(1, math.Abs(ldb[r])) {
			t.Fatalf("%s: row %d: inverse log-det %v at z, direct %v at Inverse(z)", what, r, bld[r], ldb[r])
		}
		// At x rather than xb, log g′ also moves by ℓ′·(xb − x), with
		// |ℓ′| up to ~1/(narrowest bin) ≈ 1e3 for B ≥ 1: 1e3·fwdTol.
		if fwdTol > 0 && math.Abs(bld[r]+ld[r]) > 1e3*fwdTol*math.Max(1, math.Abs(ld[r])) {
			t.Fatalf("%s: row %d: inverse log-det %v at z, direct %v at x", what, r, bld[r], ld[r])
		}
	}
}

// TestNeuralSplineCouplingExtremes: finite outputs, log-dets and
// gradients for inputs far outside [−B, B], at ±B and at knots, with
// conditioners whose last layer has huge weights.
func TestNeuralSplineCouplingExtremes(t *testing.T) {
	for _, act := range []flows.Activation{flows.Tanh, flows.ReLU} {
		for _, dim := range []int{2, 3} {
			const bins, bound, hidden = 4, 3.0, 8
			cfg := flows.SplineConfig{Bins: bins, Bound: bound}
			P := cfg.NumParams()
			d1, d2 := dim/2, dim-dim/2
			p0, bj, err := flows.NeuralSplineCoupling(flows.MLP([]int{hidden, hidden}, act), cfg)(flows.NewKey(5), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, net, _ := flows.MLP([]int{hidden, hidden}, act)(flows.NewKey(5), d1, d2*P)
			vs := nsfExtremeValues(bound, bins)
			x := nsfExtremeBatch(vs, dim)
			for name, p := range nsfExtremeParams(p0, hidden*d2*P, d2*P) {
				what := fmt.Sprintf("%v/dim=%d/%s", act, dim, name)
				// Add rows whose transformed entries lie exactly on the
				// knots (and their neighbours) that the conditioner gives
				// for the row's x1.
				xk := nsfCouplingKnotRows(net, p, x, d1, d2, bins, bound)
				// The round trip holds to rounding in x for moderate
				// knot parameters; huge ones (huge weights, or a ReLU
				// net on a huge x1) make bins as narrow as the minimum
				// width next to slopes of 1e3, where g′ gets down to
				// ~1e-9 and g⁻¹ amplifies the rounding of z as much:
				// there only the backward error is checked.
				moderate := name == "init" || name == "perturbed"
				tol := 0.0
				if moderate && act == flows.Tanh {
					tol = 1e-9
				}
				// With ReLU, x1 = ±1e300 and ±MaxFloat64 drive the hidden
				// layers to ~1e301 or overflow them: the net's output
				// (read as described on NeuralSplineCoupling) stays
				// usable for the forward pass, but the MLP's own pullback
				// multiplies by those activations (NaN in its weight
				// gradients), so only Tanh nets (bounded activations)
				// promise finite gradients for every x1.
				grads := act == flows.Tanh
				nsfCheckFinite(t, what, bj, p, x, bound, tol, 1e-12, grads)
				// Conditioning inputs up to 1e6: finite gradients for
				// every net.
				nsfCheckFinite(t, what+"/x1≤1e6", bj, p, rowsWithin(x, 0, d1, 1e6), bound, tol, 1e-12, true)
				// Moderate conditioning inputs: also the forward round
				// trip, for moderate parameters.
				if moderate {
					tol = 1e-9
				}
				nsfCheckFinite(t, what+"/x1≤10", bj, p, rowsWithin(x, 0, d1, 10), bound, tol, 1e-12, true)
				nsfCheckFinite(t, what+"/knots", bj, p, xk, bound, tol, 1e-12, true)
			}
		}
	}
}

// nsfCouplingKnotRows returns, for the moderate rows of x (|x1| ≤ 10),
// copies whose transformed columns sit exactly on every x-knot and every
// y-knot of the spline the conditioner gives for the row (and on their
// neighbouring floats). x-knots test Direct, y-knots Inverse.
func nsfCouplingKnotRows(net flows.Net, p flows.Params, x *mat.Dense, d1, d2, bins int, bound float64) *mat.Dense {
	P := 3*bins - 1
	src := rowsWithin(x, 0, d1, 10)
	n, dim := src.Dims()
	y := net.Apply(p, mat.DenseCopyOf(src.Slice(0, n, 0, d1)))
	var rows []float64
	for r := 0; r < n && r < 40; r++ {
		for side := 0; side < 2; side++ {
			var knots [][]float64
			for j := 0; j < d2; j++ {
				th := slices.Clone(y.RawRowView(r)[j*P : (j+1)*P])
				for i, v := range th { // as the layer reads non-finite outputs
					switch {
					case math.IsNaN(v):
						th[i] = 0
					case math.IsInf(v, 0):
						th[i] = math.Copysign(math.MaxFloat64, v)
					}
				}
				knots = append(knots, nsfKnots(th[side*bins:(side+1)*bins], bound))
			}
			for k := 0; k <= bins; k++ {
				for _, dir := range []float64{0, math.Inf(1), math.Inf(-1)} {
					row := slices.Clone(src.RawRowView(r))
					for j := 0; j < d2; j++ {
						q := knots[j][k]
						if dir != 0 {
							q = math.Nextafter(q, dir)
						}
						row[d1+j] = q
					}
					rows = append(rows, row...)
				}
			}
		}
	}
	return mat.NewDense(len(rows)/dim, dim, rows)
}

// BenchmarkNSFCouplingStep times one training step (NLL, gradient, Adam)
// of an RQ-NSF coupling flow: 8 spline couplings alternating halves
// (Reverse between), conditioner MLP [128, 128] ReLU, 8 bins, B = 3, at
// dim 8 with a batch of 256.
func BenchmarkNSFCouplingStep(b *testing.B) {
	benchStep(b, flows.Flow(nsfCouplingStack(8, 128), flows.Normal()), 8, 256)
}

// BenchmarkNSFCouplingSample times drawing 10,000 points from that flow.
func BenchmarkNSFCouplingSample(b *testing.B) {
	benchSample(b, flows.Flow(nsfCouplingStack(8, 128), flows.Normal()), 8, 10000)
}

// nsfCouplingStack is the benchmarks' RQ-NSF (C): couplings spline layers
// with MLP [hidden, hidden] ReLU conditioners, 8 bins on [−3, 3], Reverse
// between them.
func nsfCouplingStack(couplings, hidden int) flows.InitFunc {
	var layers []flows.InitFunc
	for i := range couplings {
		if i > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.NeuralSplineCoupling(flows.MLP([]int{hidden, hidden}, flows.ReLU), flows.SplineConfig{Bins: 8, Bound: 3}))
	}
	return flows.Serial(layers...)
}
