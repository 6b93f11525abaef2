package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// dsfbTol is the round trip DeepSigmoidalBounded promises, relative to
// max(1, |x|), where its slope is 1: the rounding of T (about 1e-12 for
// for every θ, see dsfbounded.go) amplified by the inverse slope, e^{−ld} ≤
// η^{−layers}.
const dsfbTol = 1e-12

// dsfbCheckPoint checks DeepSigmoidalBounded at x for θ: never NaN, finite
// values and log-derivatives, gradients that are
// finite where |θ| ≤ 30, and the round trip to dsfbTol·max(1, |x|)·(1 +
// e^{−ld}) for every θ; it returns the round trip's error in those units.
func dsfbCheckPoint(t *testing.T, tr Transformer, B float64, th []float64, x, g1, g2 float64) float64 {
	t.Helper()
	tr = tr.withInverseVJP()
	y, ld := tr.Forward(th, x)
	if !lmcFinite(y) && lmcFinite(x) || !lmcFinite(ld) {
		t.Fatalf("θ=%v x=%v: y=%v, log-derivative %v", th, x, y, ld)
	}
	xb, ldi := tr.Inverse(th, y)
	dth, dthi := make([]float64, len(th)), make([]float64, len(th))
	dx := tr.ForwardVJP(th, x, y, g1, g2, dth)
	dy := tr.InverseVJP(th, y, xb, g1, g2, dthi)
	moderate := true
	for _, v := range th {
		moderate = moderate && math.Abs(v) <= 30
	}
	for _, v := range append(append([]float64{dx, dy}, dth...), dthi...) {
		if math.IsNaN(v) || moderate && !lmcFinite(v) {
			t.Fatalf("θ=%v x=%v: gradient dx=%v dθ=%v | dy=%v dθ=%v", th, x, dx, dth, dy, dthi)
		}
	}
	// Inverse's log-derivative is −log f′ at its own solution (the slope
	// jumps at ±B, where y may round onto the bound).
	_, ldb := tr.Forward(th, xb)
	e := math.Abs(xb-x) / max(1, math.Abs(x)) / (1 + math.Exp(-ld))
	if !(e <= dsfbTol) || math.Abs(ldi+ldb) > 1e-9*max(1, math.Abs(ldb)) {
		t.Fatalf("θ=%v: round trip %v → %v → %v (relative error %g), log-derivatives %v, %v at the solution", th, x, y, xb, e, ldb, ldi)
	}
	return e
}

// TestDeepSigmoidalBoundedRoundTrip checks the bounded transformer over
// θ from moderate to ±1e300 (what a conditioner gives for far inputs and
// contexts) and x from the bulk to ±MaxFloat64, and reports the worst
// round trip in units of max(1, |x|)·(1 + e^{−ld}).
func TestDeepSigmoidalBoundedRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 4))
	picks := []float64{-1e300, 1e300, -1e8, 1e8, -1e3, 1e3, 0, 20, -20, 7, -7, 30, -30}
	const B = 4
	worst := 0.0
	for _, shape := range [][2]int{{1, 1}, {8, 1}, {3, 3}, {4, 2}} {
		tr := DeepSigmoidalBounded(shape[0], shape[1], B)
		for range 3000 {
			th := make([]float64, tr.Params)
			for i := range th {
				switch rng.IntN(4) {
				case 0:
					th[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)))
				case 1:
					th[i] = picks[rng.IntN(len(picks))]
				default:
					th[i] = 60 * (rng.Float64() - 0.5)
				}
			}
			x := B * (2*rng.Float64() - 1)
			switch rng.IntN(5) {
			case 0:
				x = dsfExtremeXs[rng.IntN(len(dsfExtremeXs))]
			case 1:
				x = B * float64(1-2*rng.IntN(2)) * (1 - math.Pow(10, -float64(rng.IntN(17))))
			}
			worst = max(worst, dsfbCheckPoint(t, tr, B, th, x, rng.NormFloat64(), rng.NormFloat64()))
		}
	}
	t.Logf("worst relative round-trip error %.3g", worst)
}

// TestDeepSigmoidalBoundedTails checks the tails of one layer: slope 1
// beyond ±B, continuous at ±B, and the slope floor η inside.
func TestDeepSigmoidalBoundedTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 5))
	const B = 2.5
	tr := DeepSigmoidalBounded(4, 1, B)
	for range 200 {
		th := dsfRandTheta(rng, tr.Params, 30)
		for _, e := range []float64{B, -B} {
			ye, _ := tr.Forward(th, e)
			yi, _ := tr.Forward(th, e*(1-1e-12))
			if math.Abs(yi-ye) > 1e-9 {
				t.Fatalf("θ=%v: T(%v) = %v, just inside %v", th, e, ye, yi)
			}
			for _, d := range []float64{1e-9, 1, 1e3, 1e12} {
				x := e + math.Copysign(d, e)
				y, l := tr.Forward(th, x)
				if want := ye + math.Copysign(d, e); math.Abs(y-want) > 1e-15*max(1, math.Abs(want)) || l != 0 {
					t.Fatalf("θ=%v x=%v: (%v, %v), want (%v, 0)", th, x, y, l, want)
				}
			}
		}
		for range 20 {
			if _, l := tr.Forward(th, B*(2*rng.Float64()-1)); !(l >= math.Log(dsfbMinSlope)-1e-12) {
				t.Fatalf("θ=%v: log-derivative %v below log η", th, l)
			}
		}
	}
}

// TestNeuralAutoregressiveBoundedFar runs issue 26's cases on the bounded
// NAF: 3 units, 3 layers, a ReLU MADE over 3 columns at parameters moved
// from init, rows at |x| = 1000 and with one entry from 50 to 1e8, with
// and without a context, and the masked autoregressive layer over
// DeepSigmoidalBounded(4, 2), Spline and Bernstein with |c| = 1e3 and 1e8
// (MaskedAutoregressive's doc): Inverse(Direct(x)) = x to 1e-9·max(1,
// |x|) entry by entry, 1e-7 for the spline (DeepSigmoidal is off by 1e6
// to 1e10 relative on these rows).
func TestNeuralAutoregressiveBoundedFar(t *testing.T) {
	made := MADEConfig{Hidden: []int{16, 16}, Act: ReLU}
	rows := [][]float64{{0.5, -1, 2}, {1000, -1000, 1000}, {-1000, 1000, -1000}, {50, 0.3, -0.2}, {1e4, 0.3, -0.2}, {1e8, 0.3, -0.2}, {0.1, 1e6, 0.3}, {-0.4, 0.2, -1e8}}
	cases := []struct {
		name string
		init InitFunc
		cdim int
		ctxs [][]float64
		tol  float64
	}{
		{"NAF 3x3", NeuralAutoregressiveBounded(made, 3, 3, 4), 0, [][]float64{nil}, 1e-9},
		{"NAF 3x3 context", NeuralAutoregressiveBounded(made, 3, 3, 4), 2, [][]float64{{0.3, -1}, {1e3, -1e3}, {1e8, 50}}, 1e-9},
		{"MAF DSFB(4,2) context", MaskedAutoregressive(made, DeepSigmoidalBounded(4, 2, 4)), 2, [][]float64{{1e3, -1e3}, {-1e8, 1e8}}, 1e-9},
		{"MAF Bernstein context", MaskedAutoregressive(made, Bernstein(8, 4)), 2, [][]float64{{1e3, -1e3}, {-1e8, 1e8}}, 1e-9},
		// The spline's smallest bin and slope (1e-3) amplify rounding.
		{"MAF Spline context", MaskedAutoregressive(made, Spline(SplineConfig{Bins: 6, Bound: 4})), 2, [][]float64{{1e3, -1e3}, {-1e8, 1e8}}, 1e-7},
	}
	for _, c := range cases {
		p, bj, err := c.init(NewKey(3), 3, c.cdim)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		for i := range p {
			p[i] += 0.5 * rng.NormFloat64()
		}
		for _, ctx := range c.ctxs {
			var cm *mat.Dense
			if ctx != nil {
				cm = mat.NewDense(1, c.cdim, ctx)
			}
			for _, r := range rows {
				z, ld := bj.Direct(p, mat.NewDense(1, 3, r), cm)
				xb, ild := bj.Inverse(p, z, cm)
				for j := range 3 {
					if e := math.Abs(xb.At(0, j)-r[j]) / max(1, math.Abs(r[j])); !(e <= c.tol) {
						t.Errorf("%s x=%v c=%v: z=%v, Inverse %v (column %d off by %.3g relative)", c.name, r, ctx, z.RawMatrix().Data, xb.RawMatrix().Data, j, e)
					}
				}
				if math.Abs(ild[0]+ld[0]) > 1e-9*max(1, math.Abs(ld[0])) {
					t.Errorf("%s x=%v c=%v: log-det %v, inverse %v", c.name, r, ctx, ld[0], ild[0])
				}
			}
		}
	}
}

// FuzzDeepSigmoidalBounded fuzzes DeepSigmoidalBounded(2, 2, 4) (12
// parameters) at x, θ decoded from raw as FuzzDeepSigmoidal decodes it,
// with dsfbCheckPoint.
func FuzzDeepSigmoidalBounded(f *testing.F) {
	tr := DeepSigmoidalBounded(2, 2, 4)
	f.Add(0.0, []byte{})
	f.Add(1.5, lmcEncodeTheta(0.3, -1, 2, -0.5, 0.2, 1, 0.4, -1.3, 0.9, 0.7, -0.2, 3))
	f.Add(3.9999999999999996, lmcEncodeTheta(20, -20, 1e3, -1e3, 0, 0, -20, 20, 1e300, -1e300, 5, -5))
	f.Add(-7.0, lmcEncodeTheta(math.Inf(1), math.NaN(), math.Inf(-1), math.Inf(1), math.NaN(), math.Inf(-1)))
	f.Add(math.MaxFloat64, lmcEncodeTheta(745, -745, 0, 1e8, -1e8, 0, 20, -20, 0, 20, 1e8, 0))
	f.Fuzz(func(t *testing.T, x float64, raw []byte) {
		th := make([]float64, tr.Params)
		for i := range th {
			if len(raw) >= 8*(i+1) {
				th[i] = lmixFinite(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Skip("non-finite x")
		}
		dsfbCheckPoint(t, tr, 4, th, x, 1, 1)
		dsfbCheckPoint(t, tr, 4, th, x, -0.5, 2)
	})
}
