package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// dsfRef is a plain transcription of the deep sigmoidal flow (each layer
// σ⁻¹(Σ w σ(a·h + b)) with 1 − F summed directly), good for moderate θ and
// x only.
func dsfRef(units, layers int, th []float64, x float64) (y, ld float64) {
	sig := func(t float64) float64 { return 1 / (1 + math.Exp(-t)) }
	for j := range layers {
		p := th[3*units*j : 3*units*(j+1)]
		var z float64
		for _, v := range p[2*units:] {
			z += math.Exp(v)
		}
		var F, G, f float64
		for k := range units {
			w := math.Exp(p[2*units+k]) / z
			a := math.Exp(7 * math.Tanh(p[k]/7))
			t := a*x + p[units+k]
			F += w * sig(t)
			G += w * sig(-t)
			f += w * a * sig(t) * sig(-t)
		}
		x = math.Log(F / G)
		ld += math.Log(f) - math.Log(F) - math.Log(G)
	}
	return x, ld
}

func dsfRandTheta(rng *rand.Rand, p int, scale float64) []float64 {
	th := make([]float64, p)
	for i := range th {
		th[i] = scale * rng.NormFloat64()
	}
	return th
}

func TestDeepSigmoidalMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 17))
	for _, shape := range [][2]int{{1, 1}, {3, 1}, {4, 2}, {2, 4}, {lmixStackK + 2, 2}, {2, dsfStackLayers + 2}} {
		tr := DeepSigmoidal(shape[0], shape[1])
		for range 200 {
			th := dsfRandTheta(rng, tr.Params, 1)
			x := 2 * rng.NormFloat64()
			y, ld := tr.Forward(th, x)
			ry, rld := dsfRef(shape[0], shape[1], th, x)
			if math.Abs(y-ry) > 1e-9*max(1, math.Abs(ry)) || math.Abs(ld-rld) > 1e-9*max(1, math.Abs(rld)) {
				t.Fatalf("units %d layers %d θ=%v x=%v: (%v, %v), reference (%v, %v)", shape[0], shape[1], th, x, y, ld, ry, rld)
			}
		}
	}
}

// dsfRoundTripOK reports whether xb is an acceptable inverse of y = f(x)
// (ld = log f′(x)): within the forward criterion |xb − x| ≤
// 1e-10·max(1, |x|)·(1 + e^{−ld}) (the output's rounding, amplified by the
// inverse slope, plus each layer's 1e-13), or solving the equation to a
// small backward error, |f(xb) − y| ≤ 1e-11·max(1, |y|): where the map is
// flat to below rounding, many x share one float64 y.
func dsfRoundTripOK(tr Transformer, th []float64, x, y, ld, xb float64) bool {
	if math.Abs(xb-x) <= 1e-10*max(1, math.Abs(x))*(1+math.Exp(-ld)) {
		return true
	}
	yb, _ := tr.Forward(th, xb)
	return math.Abs(yb-y) <= 1e-11*max(1, math.Abs(y))
}

// dsfExtremeXs are the inputs of the robustness tests.
var dsfExtremeXs = []float64{0, 1, -1, 0.5, 30, -30, 745, -745, 1e3, -1e3, 1e8, -1e8, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 5e-324, -5e-324}

// dsfCheckPoint checks the transformer tr at x (used as both x and y) for
// θ: never NaN; finite log-derivatives; finite gradients where |x| ≤ 1e8
// and |θ| ≤ 30 (beyond, exact gradients can exceed float64: ∂x/∂â grows
// with the intermediate values, and the inverse slope, capped at e^600 per
// layer in a plateau, compounds over the layers); and the round trip where
// |x| ≤ 1e300 and f(x) is finite.
func dsfCheckPoint(t *testing.T, tr Transformer, th []float64, x, g1, g2 float64) {
	t.Helper()
	y, ld := tr.Forward(th, x)
	xi, ldi := tr.Inverse(th, x)
	dth, dthi := make([]float64, len(th)), make([]float64, len(th))
	dx := tr.ForwardVJP(th, x, y, g1, g2, dth)
	dy := 0.0
	if lmcFinite(xi) {
		dy = tr.InverseVJP(th, x, xi, g1, g2, dthi)
	}
	all := append(append([]float64{y, ld, xi, ldi, dx, dy}, dth...), dthi...)
	for _, v := range all {
		if math.IsNaN(v) {
			t.Fatalf("θ=%v x=%v: NaN: y=%v ld=%v dx=%v dθ=%v | x=%v ld=%v dy=%v dθ=%v", th, x, y, ld, dx, dth, xi, ldi, dy, dthi)
		}
	}
	if !lmcFinite(ld) || !lmcFinite(ldi) {
		t.Fatalf("θ=%v x=%v: log-derivatives %v, %v, want finite", th, x, ld, ldi)
	}
	moderate := true
	for _, v := range th {
		moderate = moderate && math.Abs(v) <= 30
	}
	if moderate && math.Abs(x) <= 1e8 {
		for _, v := range append([]float64{dx, dy}, append(dth, dthi...)...) {
			if !lmcFinite(v) {
				t.Fatalf("θ=%v x=%v: non-finite gradient: dx=%v dθ=%v | dy=%v dθ=%v", th, x, dx, dth, dy, dthi)
			}
		}
	}
	if math.Abs(x) <= 1e300 && lmcFinite(y) {
		if xb, _ := tr.Inverse(th, y); !dsfRoundTripOK(tr, th, x, y, ld, xb) {
			t.Fatalf("θ=%v: round trip %v → %v → %v (err %g, ld %v)", th, x, y, xb, xb-x, ld)
		}
	}
}

// dsfSanitize reads θ as the layers hand it to a transformer.
func dsfSanitize(th []float64) []float64 {
	for i, v := range th {
		th[i] = lmixFinite(v)
	}
	return th
}

func TestDeepSigmoidalExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 17))
	for _, shape := range [][2]int{{1, 1}, {2, 2}, {3, 3}} {
		tr := DeepSigmoidal(shape[0], shape[1])
		var thetas [][]float64
		for _, v := range []float64{0, 1e3, -1e3, 1e8, 1e300, -1e300, math.MaxFloat64, 5e-324, 745, -745} {
			for pat := range 3 {
				th := make([]float64, tr.Params)
				for i := range th {
					th[i] = v * float64([]int{1, 1 - 2*(i%2), i%3 - 1}[pat])
				}
				thetas = append(thetas, th)
			}
		}
		for _, scale := range []float64{3, 10, 30, 1e3, 1e300} {
			for range 5 {
				thetas = append(thetas, dsfSanitize(dsfRandTheta(rng, tr.Params, scale)))
			}
		}
		for _, th := range thetas {
			for _, x := range dsfExtremeXs {
				dsfCheckPoint(t, tr, th, x, 1, 1)
				dsfCheckPoint(t, tr, th, x, -2, 0.5)
			}
		}
	}
}

func TestDeepSigmoidalRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 17))
	for _, shape := range [][2]int{{1, 1}, {4, 1}, {4, 2}, {8, 3}} {
		tr := DeepSigmoidal(shape[0], shape[1])
		for range 500 {
			th := dsfRandTheta(rng, tr.Params, 0.5+3*rng.Float64())
			for _, x := range []float64{0, 1e3, -1e3, 1e-300, 10 * rng.NormFloat64(), rng.NormFloat64()} {
				y, ld := tr.Forward(th, x)
				xb, ldb := tr.Inverse(th, y)
				if !dsfRoundTripOK(tr, th, x, y, ld, xb) {
					t.Fatalf("%v θ=%v: round trip %v → %v → %v (err %g, ld %v)", shape, th, x, y, xb, xb-x, ld)
				}
				if math.Abs(xb-x) < 1e-12*max(1, math.Abs(x)) && math.Abs(ldb+ld) > 1e-8*max(1, math.Abs(ld)) {
					t.Fatalf("%v x=%v: forward log-derivative %v, inverse %v", shape, x, ld, ldb)
				}
			}
		}
	}
}

// TestDeepSigmoidalTails checks the asymptotics: far out each layer is
// affine with slope min_k a_k, so the composition's log-derivative tends
// to Σ_j min_k log a_jk on both sides.
func TestDeepSigmoidalTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 17))
	for _, shape := range [][2]int{{1, 1}, {3, 1}, {3, 2}} {
		units, layers := shape[0], shape[1]
		tr := DeepSigmoidal(units, layers)
		for range 100 {
			th := dsfRandTheta(rng, tr.Params, 1)
			want := 0.0
			for j := range layers {
				lo := math.Inf(1)
				for k := range units {
					lo = min(lo, 7*math.Tanh(th[3*units*j+k]/7))
				}
				want += lo
			}
			for _, x := range []float64{1e6, -1e6, 1e250, -1e250} {
				if _, ld := tr.Forward(th, x); math.Abs(ld-want) > 1e-9 {
					t.Fatalf("%v x=%v: log-derivative %v, want Σ min log a = %v", shape, x, ld, want)
				}
			}
		}
	}
}

// FuzzDeepSigmoidal fuzzes the transformer with 2 units and 2 layers (12
// parameters) at x, θ decoded from raw as little-endian float64s (missing
// ones 0) and read as the layers read them (non-finite values replaced);
// a NaN x is skipped. Each input is checked with dsfCheckPoint, also at
// f(x).
func FuzzDeepSigmoidal(f *testing.F) {
	tr := DeepSigmoidal(2, 2)
	f.Add(0.0, []byte{})
	f.Add(1.5, lmcEncodeTheta(0.3, -1, 2, -0.5, 0.2, 1, 0.4, -1.3, 0.9, 0.7, -0.2, 3))
	f.Add(1e300, lmcEncodeTheta(20, -20, 1e3, -1e3, 0, 0, -20, 20, 1e300, -1e300, 5, -5))
	f.Add(-7.0, lmcEncodeTheta(math.Inf(1), math.NaN(), math.Inf(-1), math.Inf(1), math.NaN(), math.Inf(-1)))
	f.Add(math.MaxFloat64, lmcEncodeTheta(745, -745, 0, 1e8, -1e8, 0, 20, -20, 0, 20, 1e8, 0))
	f.Fuzz(func(t *testing.T, x float64, raw []byte) {
		th := make([]float64, tr.Params)
		for i := range th {
			if len(raw) >= 8*(i+1) {
				th[i] = lmixFinite(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
		if math.IsNaN(x) {
			t.Skip("NaN x")
		}
		dsfCheckPoint(t, tr, th, x, 1, 1)
		dsfCheckPoint(t, tr, th, x, -0.5, 2)
		if y, _ := tr.Forward(th, x); lmcFinite(y) {
			dsfCheckPoint(t, tr, th, y, 1, -1)
		}
	})
}

// TestDeepSigmoidalRandomExtremes mixes huge, saturating and moderate θ
// entries and inputs at random.
func TestDeepSigmoidalRandomExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	picks := []float64{-1e300, 1e300, -1e3, 1e3, 0, 20, -20, 7, -7, 30, -30}
	for _, shape := range [][2]int{{1, 1}, {2, 2}, {3, 3}} {
		tr := DeepSigmoidal(shape[0], shape[1])
		for range 3000 {
			th := make([]float64, tr.Params)
			for i := range th {
				switch rng.IntN(4) {
				case 0:
					th[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)))
				case 1:
					th[i] = picks[rng.IntN(len(picks))]
				default:
					th[i] = 60 * (rng.Float64() - 0.5)
				}
			}
			x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)))
			if rng.IntN(5) == 0 {
				x = dsfExtremeXs[rng.IntN(len(dsfExtremeXs))]
			}
			dsfCheckPoint(t, tr, th, x, rng.NormFloat64(), rng.NormFloat64())
		}
	}
}
