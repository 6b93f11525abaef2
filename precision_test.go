package flows_test

import (
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// u32 is float32's unit roundoff, 2⁻²⁴.
const u32 = 0x1p-24

// precisionTol is the derived bound on the relative difference between a
// Float32 and a Float64 result computed through products whose longest
// k-block holds kc terms, products of them chained on the longest path.
// Each float32 product is within (kc+2)·u32 of its terms' magnitude (see
// linalg.GemmF32: two input roundings and kc float32 additions), and to
// first order the errors of chained products add, each scaled by the
// sensitivity of the rest of the path, which for these well-scaled nets
// (inputs and gradients of order 1, weights at their init scale) is of
// order 1: so ‖result32 − result64‖ ≤ products·(kc+2)·u32·‖result64‖.
// Storing the hidden layers in float32 (activations and the gradients
// between layers) adds no term of its own: each stored value is rounded
// once, which the products that read it already count among their two
// input roundings; the bias gradient sums the rounded gradient (one u32
// per term, inside a product's (kc+2)·u32); and Tanh's and ELU's
// derivatives, taken from the rounded activation h, are off by at most
// 2·u32 absolutely (|h| ≤ 1 for Tanh; h + 1 for ELU), inside the (kc+2)·u32
// of the product that reads the gradient they scale.
// Measured differences are 100–1000 times smaller (random roundings
// cancel); the bound still catches a product that is wrong rather than
// rounded (an O(1) difference) or rounded far more coarsely.
func precisionTol(products, kc int) float64 { return float64(products) * float64(kc+2) * u32 }

// relErr returns ‖got − want‖₂ / ‖want‖₂.
func relErr(got, want []float64) float64 {
	var d, w float64
	for i := range want {
		d += (got[i] - want[i]) * (got[i] - want[i])
		w += want[i] * want[i]
	}
	return math.Sqrt(d / w)
}

// perturbed returns p plus normal noise of size s drawn from key (so that
// no last layer sits at its zero init).
func perturbed(p flows.Params, s float64, key flows.Key) flows.Params {
	q := append(flows.Params(nil), p...)
	rng := key.Rand()
	for i := range q {
		q[i] += s * rng.NormFloat64()
	}
	return q
}

// normalRows returns n×d standard normal entries drawn from key.
func normalRows(key flows.Key, n, d int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, d, nil)
	for i := range n {
		for j := range d {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	return x
}

// TestPrecisionNets: MLP and MADE nets built with Float32 draw the same
// parameters as with Float64, and their outputs, input gradients and
// parameter gradients agree with Float64's within precisionTol (3 products
// per layer: forward, dW, dx), yet differ (the products are float32).
func TestPrecisionNets(t *testing.T) {
	const n = 300 // weight gradients sum 300 rows: two k-blocks of 150
	for _, c := range []struct {
		name    string
		net     func(flows.Precision) flows.NetInitFunc
		in, out int
		layers  int
		kc      int // the longest k-block: the widest input of a layer, or n's blocks
	}{
		{"MLP/ReLU", func(pr flows.Precision) flows.NetInitFunc {
			return flows.MLPWith(flows.MLPConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Precision: pr})
		}, 8, 16, 3, 150},
		{"MLP/Tanh/512", func(pr flows.Precision) flows.NetInitFunc {
			return flows.MLPWith(flows.MLPConfig{Hidden: []int{512, 512}, Act: flows.Tanh, Precision: pr})
		}, 32, 64, 3, 256},
		{"MADE/ReLU", func(pr flows.Precision) flows.NetInitFunc {
			return flows.MADE(flows.MADEConfig{Hidden: []int{128, 128}, Act: flows.ReLU, Precision: pr})
		}, 8, 16, 3, 150},
		// 3×3 convs 2→16, two of 16→16, 16→4 on 6×6 images: the longest
		// k-block is a forward product's 16·9 = 144 terms.
		{"ConvNet", func(pr flows.Precision) flows.NetInitFunc {
			return flows.ConvNet(6, 6, flows.ConvNetConfig{Hidden: 16, Blocks: 1, Precision: pr})
		}, 2 * 36, 4 * 36, 4, 144},
		{"MADE/SiLU", func(pr flows.Precision) flows.NetInitFunc {
			return flows.MADE(flows.MADEConfig{Hidden: []int{64}, Act: flows.SiLU, Order: flows.RandomOrder, Precision: pr})
		}, 5, 10, 2, 150},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, n64, err := c.net(flows.Float64)(flows.NewKey(1), c.in, c.out)
			if err != nil {
				t.Fatal(err)
			}
			p32, n32, err := c.net(flows.Float32)(flows.NewKey(1), c.in, c.out)
			if err != nil {
				t.Fatal(err)
			}
			if relErr(p32, p) != 0 {
				t.Fatal("Float32 drew other parameters")
			}
			p = perturbed(p, 0.1, flows.NewKey(2))
			x, dy := normalRows(flows.NewKey(3), n, c.in), normalRows(flows.NewKey(4), n, c.out)
			y64, b64 := n64.ApplyVJP(p, x)
			y32, b32 := n32.ApplyVJP(p, x)
			if a := n32.Apply(p, x); !mat.Equal(a, y32) {
				t.Error("Apply and ApplyVJP differ in Float32")
			}
			dp64, dp32 := make(flows.Params, len(p)), make(flows.Params, len(p))
			dx64, dx32 := b64(dy, dp64), b32(dy, dp32)
			tol := precisionTol(3*c.layers, c.kc)
			for _, r := range []struct {
				what      string
				got, want []float64
			}{
				{"output", y32.RawMatrix().Data, y64.RawMatrix().Data},
				{"input gradient", dx32.RawMatrix().Data, dx64.RawMatrix().Data},
				{"parameter gradient", dp32, dp64},
			} {
				e := relErr(r.got, r.want)
				if !(e <= tol) || e == 0 {
					t.Errorf("%s: relative difference %.3g, want in (0, %.3g]", r.what, e, tol)
				}
				t.Logf("%s: relative difference %.3g (bound %.3g)", r.what, e, tol)
			}
		})
	}
}

// realNVPPrec is realNVP with its MLPs' products in pr.
func realNVPPrec(couplings, hidden int, pr flows.Precision) flows.InitFunc {
	var layers []flows.InitFunc
	for i := range couplings {
		if i > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.AffineCoupling(flows.MLPWith(flows.MLPConfig{Hidden: []int{hidden, hidden}, Act: flows.ReLU, Precision: pr})))
	}
	return flows.Serial(layers...)
}

// mafFlowPrec is mafFlow with its MADEs' products in pr: sorted degrees,
// as `flows fit --kind maf` builds them (the benchmarks' MAF).
func mafFlowPrec(h int, pr flows.Precision) flows.DistInitFunc {
	return flows.Flow(mafPrecDegrees(h, pr, flows.SortedDegrees), flows.Normal())
}

// mafPrec is the tests' MAF bijection: 5 MAF layers with MADE [h, h] and
// cyclic degrees (the default, which TestPinnedFloat32 pins).
func mafPrec(h int, pr flows.Precision) flows.InitFunc {
	return mafPrecDegrees(h, pr, flows.CyclicDegrees)
}

// mafPrecDegrees is mafPrec with the MADEs' degrees deg.
func mafPrecDegrees(h int, pr flows.Precision, deg flows.Degrees) flows.InitFunc {
	cfg := flows.MADEConfig{Hidden: []int{h, h}, Act: flows.ReLU, Precision: pr, Degrees: deg}
	var layers []flows.InitFunc
	for l := 0; l < 5; l++ {
		if l > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.MAF(cfg))
	}
	return flows.Serial(layers...)
}

// precisionFlows are the flows of the float32 tests: a MAF (5 layers) and a
// RealNVP (4 couplings), and the products on their longest path (3 per
// net layer, 3 net layers per flow layer).
var precisionFlows = []struct {
	name     string
	flow     func(flows.Precision) flows.DistInitFunc
	products int
}{
	{"MAF", func(pr flows.Precision) flows.DistInitFunc { return flows.Flow(mafPrec(64, pr), flows.Normal()) }, 5 * 9},
	{"RealNVP", func(pr flows.Precision) flows.DistInitFunc {
		return flows.Flow(realNVPPrec(4, 64, pr), flows.Normal())
	}, 4 * 9},
}

// flowLossGrad returns the mean NLL of x and its gradient (optim.NLL).
func flowLossGrad(t *testing.T, d flows.Distribution, p flows.Params, x *mat.Dense) (float64, flows.Params) {
	t.Helper()
	g := make(flows.Params, len(p))
	loss, err := optim.NLL(d, p, x, nil, g)
	if err != nil {
		t.Fatal(err)
	}
	return loss, g
}

// TestPrecisionFlowGradient: a whole flow's loss and loss gradient in
// Float32 agree with Float64's within precisionTol. That the sums of
// log-determinants and of the loss stay float64, which this bound is too
// loose to see, is TestPrecisionSumsFloat64's.
func TestPrecisionFlowGradient(t *testing.T) {
	const dim, n = 6, 400 // 400 rows: chunks of 133–134 rows, one k-block each
	for _, c := range precisionFlows {
		t.Run(c.name, func(t *testing.T) {
			p, d64, err := c.flow(flows.Float64)(flows.NewKey(5), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, d32, err := c.flow(flows.Float32)(flows.NewKey(5), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			p = perturbed(p, 0.05, flows.NewKey(6))
			x := normalRows(flows.NewKey(7), n, dim)
			l64, g64 := flowLossGrad(t, d64, p, x)
			l32, g32 := flowLossGrad(t, d32, p, x)
			tol := precisionTol(c.products, 134)
			if e := math.Abs(l32-l64) / math.Abs(l64); !(e <= tol) {
				t.Errorf("loss %v in Float32, %v in Float64: relative difference %.3g, want ≤ %.3g", l32, l64, e, tol)
			}
			e := relErr(g32, g64)
			if !(e <= tol) || e == 0 {
				t.Errorf("loss gradient: relative difference %.3g, want in (0, %.3g]", e, tol)
			}
			t.Logf("loss %.3g, loss gradient %.3g relative difference (bound %.3g)", math.Abs(l32-l64)/math.Abs(l64), e, tol)
		})
	}
}

// hashBits returns an FNV-1a hash of the bits of v, as hex.
func hashBits(v ...[]float64) string {
	h := fnv.New64a()
	var b [8]byte
	for _, s := range v {
		for _, f := range s {
			u := math.Float64bits(f)
			for i := range b {
				b[i] = byte(u >> (8 * i))
			}
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// pinnedF32 are the hashes of the log densities and loss gradients of
// precisionFlows in Float32 on a fixed batch, as every kernel (AVX-512,
// AVX2, the portable one, purego) computes them on any GOMAXPROCS, in the
// openblas build too (GemmF32 runs on our kernels there). CI runs
// this test under each kernel. A change of the float32 arithmetic changes
// them: say so, and update them from the failure message.
var pinnedF32 = map[string]string{
	"MAF":     "c816f2d6bee6f0e7",
	"RealNVP": "966dd5e3d094a9c1",
}

// TestPinnedFloat32: the float32 mode gives the pinned bits, on any
// GOMAXPROCS.
func TestPinnedFloat32(t *testing.T) {
	const dim, n = 6, 300
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range precisionFlows {
		p, d, err := c.flow(flows.Float32)(flows.NewKey(8), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p = perturbed(p, 0.05, flows.NewKey(9))
		x := normalRows(flows.NewKey(10), n, dim)
		for _, procs := range []int{1, 2, 3} {
			runtime.GOMAXPROCS(procs)
			_, g := flowLossGrad(t, d, p, x)
			if got := hashBits(d.LogPDF(p, x, nil), g); got != pinnedF32[c.name] {
				t.Errorf("%s, GOMAXPROCS=%d: float32 log densities and gradient hash to %s, pinned %s", c.name, procs, got, pinnedF32[c.name])
			}
		}
	}
}

// TestPrecisionRoundTrip: in Float32 a MAF's inverse (its incremental MADE
// pass, sampling's path) undoes its direct pass, and a coupling's too, to
// float32's accuracy: each layer's shift and log-scale come from products
// within precisionTol(6, 64) of exact in either direction (3 products per
// net layer, 2 net layers before the output's), so for order-1 rows the
// round trip through 3 layers is within 3·2·precisionTol(6, 64) ≈ 1.4e-4.
// Measured: 6e-7 for the MAF; a coupling's is exact to float64 rounding,
// its net seeing the same half both ways.
func TestPrecisionRoundTrip(t *testing.T) {
	const dim, n = 5, 200
	cfg := flows.MADEConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Precision: flows.Float32}
	net := flows.MLPWith(flows.MLPConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Precision: flows.Float32})
	for _, c := range []struct {
		name string
		init flows.InitFunc
	}{
		{"MAF", flows.Serial(flows.MAF(cfg), flows.Reverse(), flows.MAF(cfg), flows.Reverse(), flows.MAF(cfg))},
		{"RealNVP", flows.Serial(flows.AffineCoupling(net), flows.Reverse(), flows.AffineCoupling(net))},
	} {
		p, b, err := c.init(flows.NewKey(11), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p = perturbed(p, 0.05, flows.NewKey(12))
		x := normalRows(flows.NewKey(13), n, dim)
		z, ld := b.Direct(p, x, nil)
		back, ldInv := b.Inverse(p, z, nil)
		tol := 3 * 2 * precisionTol(6, 64)
		worst := 0.0
		for i := range n {
			for j := range dim {
				worst = max(worst, math.Abs(back.At(i, j)-x.At(i, j)))
			}
			worst = max(worst, math.Abs(ld[i]+ldInv[i]))
		}
		if !(worst <= tol) {
			t.Errorf("%s: round trip off by %.3g, want ≤ %.3g", c.name, worst, tol)
		}
		t.Logf("%s: round trip within %.3g (bound %.3g)", c.name, worst, tol)
	}
}

// TestPrecisionSumsFloat64: in Float32 the sums of log-determinants (over a
// Serial's layers and with the base density's) and the loss's sum over rows
// stay float64. The relative bounds of TestPrecisionFlowGradient cannot see
// that: a float32 sum errs by about u32 = 6e-8 of its size, far inside
// precisionTol. So this test puts a large exact constant into every sum and
// asks for float64's accuracy. A first layer Standardize(0, s) with
// s = 2⁻⁹⁰⁰ on the rows s·z adds C = dim·900·ln 2 ≈ 3743 to each row's
// log-determinant, and hands the nets after it z, bit for bit as a scale of
// 1 on the rows z does (a power of two scales exactly); so the nets' float32
// products are the same in both flows and the log densities must differ by
// exactly C, and the losses by −C, up to float64 rounding. A row's log
// density takes at most dim + layers + 2 roundings of partial sums of size
// at most C + 100 (the log density, the layers' log-determinants and the
// prior's are all well below 100 here), each within 2⁻⁵³ of it; the loss
// adds n more, of partial sums of at most n·(C + 100), then divides by n:
// n·2⁻⁵³·(C + 100) ≈ 1.3e-10 for n = 300. Both are below 2⁻⁴⁰·C. Held in float32,
// a value of size C is off by up to 2⁻²⁴·C/2 ≈ 1.1e-4 (2⁻¹³, half the
// float32 spacing at 2048–4096), uniformly spread, so a sum in float32
// anywhere after the first layer (Serial's, the flow's, the loss's) leaves
// almost every one of 300 rows beyond 2⁻⁴⁰·C ≈ 3.4e-9. The nets'
// parameter gradients do not involve C at all: they must be the same bits.
func TestPrecisionSumsFloat64(t *testing.T) {
	const dim, n, h = 6, 300, 64
	s := math.Ldexp(1, -900)
	mlp := flows.MLPWith(flows.MLPConfig{Hidden: []int{h, h}, Act: flows.ReLU, Precision: flows.Float32})
	nsf := flows.Serial(flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 8, Bound: 4}), flows.Reverse(),
		flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 8, Bound: 4}))
	for _, c := range []struct {
		name string
		body flows.InitFunc
	}{
		{"MAF", mafPrec(h, flows.Float32)},
		{"RealNVP", realNVPPrec(4, h, flows.Float32)},
		{"NSF", nsf},
	} {
		t.Run(c.name, func(t *testing.T) {
			flow := func(scale float64) flows.DistInitFunc {
				sc := make([]float64, dim)
				for j := range sc {
					sc[j] = scale
				}
				return flows.Flow(flows.Serial(flows.Standardize(make([]float64, dim), sc), c.body), flows.Normal())
			}
			p, one, err := flow(1)(flows.NewKey(14), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, tiny, err := flow(s)(flows.NewKey(14), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			p = perturbed(p, 0.05, flows.NewKey(15))
			z := normalRows(flows.NewKey(16), n, dim)
			var x mat.Dense
			x.Scale(s, z)
			bigC := dim * 900 * math.Ln2
			tol := math.Ldexp(bigC, -40)
			lp1, lpS := one.LogPDF(p, z, nil), tiny.LogPDF(p, &x, nil)
			worst := 0.0
			for i := range n {
				worst = max(worst, math.Abs(lpS[i]-lp1[i]-bigC))
			}
			if !(worst <= tol) {
				t.Errorf("log densities: off the exact offset %.6g by up to %.3g, want ≤ %.3g (a sum in float32?)", bigC, worst, tol)
			}
			l1, g1 := flowLossGrad(t, one, p, z)
			lS, gS := flowLossGrad(t, tiny, p, &x)
			if e := math.Abs(lS - l1 + bigC); !(e <= tol) {
				t.Errorf("loss %.17g against %.17g: off the exact offset −%.6g by %.3g, want ≤ %.3g (a sum in float32?)", lS, l1, bigC, e, tol)
			}
			if relErr(gS, g1) != 0 {
				t.Error("the parameter gradients differ: the nets did not see the same rows")
			}
			t.Logf("log densities within %.3g of the offset, loss within %.3g (bound %.3g)", worst, math.Abs(lS-l1+bigC), tol)
		})
	}
}
