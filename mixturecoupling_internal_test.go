package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// lmcRandTheta returns conditioner outputs for K components with
// independent normal entries of standard deviation scale.
func lmcRandTheta(rng *rand.Rand, k int, scale float64) []float64 {
	th := make([]float64, 3*k+2)
	for i := range th {
		th[i] = scale * rng.NormFloat64()
	}
	return th
}

// lmcRef is an independent, plain transcription of the map (the Flow++
// formula, 1 − F summed directly), good for moderate θ and x only.
func lmcRef(th []float64, x float64) (y, ld float64) {
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

func lmcFinite(v float64) bool { return v-v == 0 }

func TestLogisticMixtureMapIdentityAtZero(t *testing.T) {
	for _, k := range []int{1, 2, 3, 4, 7, lmixStackK + 5} {
		th := make([]float64, 3*k+2)
		xs := []float64{0, 5e-324, -1e-300, 1e-8, 0.5, -1, 3, -17, 36, -40, 700, -745, 1e3, -1e5, 1e300, -1e300, math.MaxFloat64 / 2}
		for i := 0; i <= 400; i++ {
			xs = append(xs, -20+0.1*float64(i))
		}
		for _, x := range xs {
			y, ld := lmixForward(th, x, nil)
			// θ = 0: K equal components, μ = 0, s = 1, so F = σ and
			// y = logit(σ(x)) = x in real arithmetic. log F and
			// log(1 − F) are each rounded (to a few ulps of max(|x|,
			// log K)), as is log w = −log K, so allow 8 ulps of that.
			tol := 8 * 0x1p-52 * max(math.Abs(x), math.Log(float64(k)), 1)
			if math.Abs(y-x) > tol || math.Abs(ld) > 8*0x1p-52*max(1, math.Log(float64(k))) {
				t.Fatalf("K=%d θ=0 x=%v: y=%v (err %g) ld=%v, want the identity", k, x, y, y-x, ld)
			}
			xb, ldb := lmixInverse(th, x, nil)
			if math.Abs(xb-x) > tol || math.Abs(ldb) > 8*0x1p-52*max(1, math.Log(float64(k))) {
				t.Fatalf("K=%d θ=0: inverse at %v = %v (err %g) ld=%v", k, x, xb, xb-x, ldb)
			}
		}
	}
}

func TestLogisticMixtureMapMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, k := range []int{1, 2, 4, 9} {
		for range 500 {
			th := lmcRandTheta(rng, k, 0.5+rng.Float64())
			x := 8 * (2*rng.Float64() - 1)
			y, ld := lmixForward(th, x, nil)
			yr, ldr := lmcRef(th, x)
			// Two transcriptions of one formula; the reference forms
			// 1 − F and log(F/(1−F)) directly, which loses relative
			// accuracy as F nears 0 or 1 (|x| up to 8 with scales down to
			// ~e⁻³ gives F(1−F) ~ 1e-10): 1e-9 covers it.
			if math.Abs(y-yr) > 1e-9*max(1, math.Abs(yr)) || math.Abs(ld-ldr) > 1e-9*max(1, math.Abs(ldr)) {
				t.Fatalf("K=%d θ=%v x=%v: got (%v, %v), reference (%v, %v)", k, th, x, y, ld, yr, ldr)
			}
		}
	}
}

// lmcFD compares an analytic derivative with a central difference of f at
// at with step h. The tolerance covers the difference's truncation
// (h²·|f‴|/6, with f‴ up to ~1e3 for the narrowest scales used) and
// rounding (~1e-16·|f|/h).
func lmcFD(t *testing.T, what string, an float64, f func(float64) float64, at, h float64) {
	t.Helper()
	fd := (f(at+h) - f(at-h)) / (2 * h)
	if math.Abs(fd-an) > 2e-6*max(1, math.Abs(an), math.Abs(fd)) {
		t.Fatalf("%s: analytic %v, finite difference %v", what, an, fd)
	}
}

func TestLogisticMixtureMapForwardVJP(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, k := range []int{1, 2, 3, 5} {
		for range 300 {
			th := lmcRandTheta(rng, k, 0.3+1.2*rng.Float64())
			x := 6 * (2*rng.Float64() - 1)
			gy, gl := rng.NormFloat64(), rng.NormFloat64()
			L := func(th []float64, x float64) float64 {
				y, ld := lmixForward(th, x, nil)
				return gy*y + gl*ld
			}
			dth := make([]float64, len(th))
			dth[0] = 0.25 // the VJP must add, not overwrite
			y, ld, dx := lmixForwardVJP(th, x, gy, gl, dth, nil)
			dth[0] -= 0.25
			if yf, ldf := lmixForward(th, x, nil); y != yf || ld != ldf {
				t.Fatalf("VJP values (%v, %v) differ from forward (%v, %v)", y, ld, yf, ldf)
			}
			lmcFD(t, "dL/dx", dx, func(v float64) float64 { return L(th, v) }, x, 1e-6)
			for i := range th {
				tp := append([]float64(nil), th...)
				lmcFD(t, "dL/dθ", dth[i], func(v float64) float64 { tp[i] = v; return L(tp, x) }, th[i], 1e-6)
			}
		}
	}
}

func TestLogisticMixtureMapInverseVJP(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, k := range []int{1, 2, 3, 5} {
		for range 300 {
			th := lmcRandTheta(rng, k, 0.3+1.2*rng.Float64())
			y, _ := lmixForward(th, 4*(2*rng.Float64()-1), nil)
			gx, gl := rng.NormFloat64(), rng.NormFloat64()
			L := func(th []float64, y float64) float64 {
				x, ld := lmixInverse(th, y, nil)
				return gx*x + gl*ld
			}
			dth := make([]float64, len(th))
			x, ld, dy := lmixInverseVJP(th, y, gx, gl, dth, nil)
			if xf, ldf := lmixInverse(th, y, nil); x != xf || ld != ldf {
				t.Fatalf("VJP values (%v, %v) differ from inverse (%v, %v)", x, ld, xf, ldf)
			}
			dth2 := make([]float64, len(th))
			if dy2 := lmixInverseBack(th, y, x, gx, gl, dth2, nil); dy2 != dy || !equalFloats(dth, dth2) {
				t.Fatalf("lmixInverseBack differs from lmixInverseVJP")
			}
			// The inverse is solved to 1e-13 relative, so a difference
			// with step 1e-6 carries ~1e-7 of solver noise at most (and
			// far less in practice: Newton's last step is quadratic).
			lmcFD(t, "dL/dy", dy, func(v float64) float64 { return L(th, v) }, y, 1e-6)
			for i := range th {
				tp := append([]float64(nil), th...)
				lmcFD(t, "dL/dθ", dth[i], func(v float64) float64 { tp[i] = v; return L(tp, y) }, th[i], 1e-6)
			}
		}
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lmcRoundTripOK reports whether xb is an acceptable inverse of y = map(x),
// with ld = log y′(x). Either xb is within the forward criterion
//
//	|xb − x| ≤ 1e-10·max(1, |x|)·(1 + e^{−ld})
//
// (the output's rounding, a few ulps of its terms, turned into an error in
// x by the inverse slope e^{−ld}, plus the solver's 1e-13), or xb solves
// the equation up to a small mixed backward error:
//
//	|y(xb) − y| ≤ 64ε·scale + y′(xb)·1e-12·max(1, |xb|),
//
// where scale bounds the terms y is computed from (|b|, e^a·(|log F| +
// |log(1 − F)| + 1)) at xb. The second criterion is the one that always
// holds: where the map is flat to below rounding (plateaus between narrow,
// far-apart components), many x share one float64 y and the inverse may
// return any of them.
func lmcRoundTripOK(th []float64, x, y, ld, xb float64) bool {
	if math.Abs(xb-x) <= 1e-10*max(1, math.Abs(x))*(1+math.Exp(-ld)) {
		return true
	}
	m := lmixSetup(th, nil)
	m.point(xb)
	yb, ldb := m.output()
	scale := math.Abs(m.b) + m.ea*(math.Abs(m.mA)+math.Abs(m.mB)+1)
	return math.Abs(yb-y) <= 64*0x1p-52*scale+math.Exp(ldb)*1e-12*max(1, math.Abs(xb))
}

func TestLogisticMixtureMapRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	maxEvals, total, n := 0, 0, 0
	for _, k := range []int{1, 2, 3, 4, 8, lmixStackK + 3} {
		for range 1000 {
			th := lmcRandTheta(rng, k, 0.5+3*rng.Float64())
			xs := []float64{0, 1e3, -1e3, 1e300, -1e300, 1e-300}
			for range 10 {
				xs = append(xs, 10*rng.NormFloat64())
			}
			for _, x := range xs {
				y, ld := lmixForward(th, x, nil)
				xb, ldb, evals := lmixInverseIters(th, y, nil)
				maxEvals = max(maxEvals, evals)
				total += evals
				n++
				if !lmcRoundTripOK(th, x, y, ld, xb) {
					t.Fatalf("K=%d θ=%v: round trip %v → %v → %v (err %g, ld %v)", k, th, x, y, xb, xb-x, ld)
				}
				// log ∂x/∂y = −log ∂y/∂x at matching points, up to the
				// round-trip error moving log y′ (|∂ log y′/∂x| ≤ 2Kρ_max).
				if d := math.Abs(ldb + ld); d > 1e-9*max(1, math.Abs(ld)) && math.Abs(xb-x) < 1e-12*max(1, math.Abs(x)) {
					t.Fatalf("K=%d x=%v: forward log-deriv %v, inverse %v", k, x, ld, ldb)
				}
			}
		}
	}
	t.Logf("inverse: %.2f evaluations on average, at most %d", float64(total)/float64(n), maxEvals)
	// 2 bracket ends + ≤ 100 iterations + 1 final, and expansions: but in
	// practice a handful.
	if maxEvals > 60 {
		t.Errorf("an inversion took %d evaluations, want ≤ 60 for these parameters", maxEvals)
	}
}

// TestLMixTails checks the asymptotics: far out the map is affine with
// log-slope a − log s_max, the largest scale among components of nonzero
// weight, on both sides.
func TestLogisticMixtureMapTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, k := range []int{1, 2, 5} {
		for range 200 {
			th := lmcRandTheta(rng, k, 2)
			m := lmixSetup(th, nil)
			want := m.a - m.lsMax
			for _, x := range []float64{1e5, -1e5, 1e300, -1e300} {
				y, ld := lmixForward(th, x, nil)
				if !lmcFinite(y) || math.Abs(ld-want) > 1e-9 {
					t.Fatalf("K=%d x=%v: y=%v ld=%v, want finite y and ld → a − log s_max = %v", k, x, y, ld, want)
				}
				// Linear: y(2x) − y(x) = x·e^{a − log s_max} up to the
				// rounding of y (a few ulps of |y|).
				y2, _ := lmixForward(th, 2*x, nil)
				slope := (y2 - y) / x
				if math.Abs(slope-math.Exp(want)) > 1e-9*math.Exp(want) {
					t.Fatalf("K=%d x=%v: secant slope %v, want %v", k, x, slope, math.Exp(want))
				}
				dth := make([]float64, len(th))
				_, _, dx := lmixForwardVJP(th, x, 1, 1, dth, nil)
				xi, _, dy := lmixInverseVJP(th, y, 1, 1, dth, nil)
				if !lmcFinite(dx) || !lmcFinite(dy) || !lmcFinite(xi) {
					t.Fatalf("K=%d x=%v: dx=%v, inverse %v, dy=%v", k, x, dx, xi, dy)
				}
				for _, g := range dth {
					if !lmcFinite(g) {
						t.Fatalf("K=%d x=%v: θ gradient %v", k, x, dth)
					}
				}
			}
		}
	}
}

// lmcExtremeThetas returns conditioner outputs with extreme entries for K
// components: huge, tiny, infinite and NaN, in patterns that make the
// components far apart, narrow or wide, and the weights degenerate.
func lmcExtremeThetas(rng *rand.Rand, k int) [][]float64 {
	n := 3*k + 2
	fill := func(f func(i int) float64) []float64 {
		th := make([]float64, n)
		for i := range th {
			th[i] = f(i)
		}
		return th
	}
	var out [][]float64
	for _, v := range []float64{0, 1e3, -1e3, 1e8, 1e300, -1e300, math.MaxFloat64, 5e-324, 745, -745, math.Inf(1), math.Inf(-1), math.NaN()} {
		out = append(out, fill(func(int) float64 { return v }))
		out = append(out, fill(func(i int) float64 { return v * float64(1-2*(i%2)) }))
		out = append(out, fill(func(i int) float64 { return v * float64(i%3-1) }))
	}
	for _, scale := range []float64{10, 1e3, 1e10, 1e300} {
		for range 5 {
			out = append(out, lmcRandTheta(rng, k, scale))
		}
	}
	// Narrow components far apart, equal weights: plateaus of logit F.
	for _, gap := range []float64{1, 30, 1e3} {
		out = append(out, fill(func(i int) float64 {
			switch {
			case i < k:
				return 0
			case i < 2*k:
				return gap * float64(i-k)
			case i < 3*k:
				return -1e3
			}
			return 0
		}))
	}
	return out
}

// lmcCheckPoint checks the four scalar functions at x (used as both x and
// y) for θ: never NaN; finite values where the contract promises them
// (|x| ≤ 1e300 and every mean and the shift within ±1e300, read as the
// layer reads them), and finite gradients too when moreover |θ| ≤ 1e8; the
// VJPs agree with the plain passes; and the round trip holds
// (lmcRoundTripOK).
func lmcCheckPoint(t *testing.T, th []float64, x, g1, g2 float64) {
	t.Helper()
	k := (len(th) - 2) / 3
	dth, dthi := make([]float64, len(th)), make([]float64, len(th))
	y, ld := lmixForward(th, x, nil)
	y2, ld2, dx := lmixForwardVJP(th, x, g1, g2, dth, nil)
	xi, ldi, evals := lmixInverseIters(th, x, nil)
	xi2, ldi2, dy := lmixInverseVJP(th, x, g1, g2, dthi, nil)
	vals := []float64{y, ld, xi, ldi}
	grads := append(append([]float64{dx, dy}, dth...), dthi...)
	for _, v := range append(vals, grads...) {
		if math.IsNaN(v) {
			t.Fatalf("K=%d θ=%v x=%v: NaN: y=%v ld=%v dx=%v dθ=%v | x=%v ld=%v dy=%v dθ=%v", k, th, x, y, ld, dx, dth, xi, ldi, dy, dthi)
		}
	}
	if !(y == y2 || (math.IsNaN(y) && math.IsNaN(y2))) || ld != ld2 || xi != xi2 || ldi != ldi2 {
		t.Fatalf("θ=%v x=%v: VJP values differ from plain passes", th, x)
	}
	if evals > 2*(1+lmixMaxExpand+1)+2*lmixMaxIter+1 {
		t.Fatalf("θ=%v x=%v: %d evaluations", th, x, evals)
	}
	inRange := math.Abs(x) <= 1e300 && math.Abs(lmixFinite(th[3*k+1])) <= 1e300
	moderate := true
	for i, v := range th {
		if i >= k && i < 2*k && math.Abs(lmixFinite(v)) > 1e300 {
			inRange = false
		}
		moderate = moderate && math.Abs(v) <= 1e8
	}
	if inRange {
		for _, v := range vals {
			if !lmcFinite(v) {
				t.Fatalf("K=%d θ=%v x=%v: non-finite value: y=%v ld=%v | x=%v ld=%v", k, th, x, y, ld, xi, ldi)
			}
		}
		if moderate {
			for _, v := range grads {
				if !lmcFinite(v) {
					t.Fatalf("K=%d θ=%v x=%v: non-finite gradient: dx=%v dθ=%v | dy=%v dθ=%v", k, th, x, dx, dth, dy, dthi)
				}
			}
		}
		if lmcFinite(y) {
			if xb, _ := lmixInverse(th, y, nil); !lmcRoundTripOK(th, x, y, ld, xb) {
				t.Fatalf("K=%d θ=%v: round trip %v → %v → %v (err %g, ld %v)", k, th, x, y, xb, xb-x, ld)
			}
		}
	}
}

// lmcExtremeXs are the inputs of the robustness tests.
var lmcExtremeXs = []float64{0, 1, -1, 1e3, -1e3, 1e8, -1e8, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 5e-324, -5e-324, 0.5, 30, -30, 745, -745}

func TestLogisticMixtureMapExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, k := range []int{1, 2, 3, 4} {
		for _, th := range lmcExtremeThetas(rng, k) {
			for _, x := range lmcExtremeXs {
				lmcCheckPoint(t, th, x, 1, 1)
				lmcCheckPoint(t, th, x, -3, 0.5)
			}
		}
	}
}

// TestLMixRandomExtremes mixes huge, saturating and moderate θ entries at
// random.
func TestLogisticMixtureMapRandomExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	picks := []float64{-1e300, 1e300, -1e3, 1e3, 0, 20, -20, 7, -7, 745, -745}
	for _, k := range []int{1, 2, 3, 5} {
		for range 5000 {
			th := make([]float64, 3*k+2)
			for i := range th {
				switch rng.IntN(4) {
				case 0:
					th[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)))
				case 1:
					th[i] = picks[rng.IntN(len(picks))]
				default:
					th[i] = rng.NormFloat64() * 5
				}
			}
			x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(6)))
			if rng.IntN(5) == 0 {
				x = lmcExtremeXs[rng.IntN(len(lmcExtremeXs))]
			}
			lmcCheckPoint(t, th, x, rng.NormFloat64(), rng.NormFloat64())
		}
	}
}

func TestLogisticMixtureMapMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, k := range []int{1, 3, 6} {
		for range 8 {
			th := lmcRandTheta(rng, k, 1.5)
			prevY, prevX := math.Inf(-1), math.Inf(-1)
			for i := 0; i <= 6000; i++ {
				v := -30 + 60*float64(i)/6000
				y, _ := lmixForward(th, v, nil)
				x, _ := lmixInverse(th, v, nil)
				// Scales down to ~e⁻⁵ and spreads of a few units can make
				// the map as flat as e^{−60} between components: there the
				// true increase per step is below rounding, so require
				// only that values never decrease by more than 2 ulps.
				if y < prevY-2*lmcULP(y) || x < prevX-2*lmcULP(x) {
					t.Fatalf("θ=%v: decreasing at %v: y %v after %v, x %v after %v", th, v, y, prevY, x, prevX)
				}
				prevY, prevX = y, x
			}
		}
	}
}

func lmcULP(v float64) float64 {
	v = math.Abs(v)
	return math.Nextafter(v, math.Inf(1)) - v
}

func TestLogisticMixtureMapMid(t *testing.T) {
	vals := []float64{-math.MaxFloat64, -1e300, -3, -1.0000000000000002, -1, -0.5, -1e-10, -5e-324, 0, 5e-324, 1e-300, 0x1p-52, 0.75, 1, 1.5, 2, 1e300, math.MaxFloat64}
	for i, a := range vals {
		// Keys are monotone, exact beyond ±1 and to 2⁻⁵² within.
		if b := lmixFromKey(lmixKey(a)); math.Abs(a) >= 1 && b != a || math.Abs(b-a) > 0x1p-52 {
			t.Fatalf("key round trip of %v gives %v", a, b)
		}
		if a >= 1 && a < math.MaxFloat64 && lmixKey(math.Nextafter(a, math.Inf(1))) != lmixKey(a)+1 {
			t.Fatalf("the float after %v does not have the next key", a)
		}
		for _, b := range vals[i+1:] {
			if lmixKey(b) < lmixKey(a) {
				t.Fatalf("key(%v) < key(%v)", b, a)
			}
			m := lmixMid(a, b)
			if !(m >= a && m <= b) || (m == a || m == b) && math.Nextafter(a, b) != b {
				t.Fatalf("mid(%v, %v) = %v", a, b, m)
			}
		}
	}
	if m := lmixMid(1, 2); m != 1.5 {
		t.Fatalf("mid(1, 2) = %v, want 1.5 (arithmetic within a binade)", m)
	}
	if m := lmixMid(-0.5, 0.25); m != -0.125 {
		t.Fatalf("mid(−0.5, 0.25) = %v, want −0.125 (arithmetic within [−1, 1])", m)
	}
	if m := lmixMid(-math.MaxFloat64, math.MaxFloat64); m != 0 {
		t.Fatalf("mid(−Max, Max) = %v, want 0", m)
	}
	// 63 bisections towards any root shrink the widest bracket below the
	// tolerance.
	for _, root := range []float64{0, 1e-20, -0.3, 1, -7.5, 1e10, -1e300} {
		lo, hi := -math.MaxFloat64, math.MaxFloat64
		n := 0
		for ; hi-lo > lmixTol*max(1, min(math.Abs(lo), math.Abs(hi))); n++ {
			if m := lmixMid(lo, hi); m < root {
				lo = m
			} else {
				hi = m
			}
		}
		if n > 63 || lo > root || hi < root {
			t.Fatalf("root %v: %d bisections to [%v, %v]", root, n, lo, hi)
		}
	}
}

func TestLogisticMixtureMapNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	th := lmcRandTheta(rng, 4, 1)
	dth := make([]float64, len(th))
	var arr [lmixBufPer * lmixStackK]float64
	buf := arr[:]
	allocs := testing.AllocsPerRun(100, func() {
		y, _ := lmixForward(th, 0.3, buf)
		x, _ := lmixInverse(th, y, buf)
		lmixForwardVJP(th, 0.3, 1, 1, dth, buf)
		lmixInverseVJP(th, y, 1, 1, dth, buf)
		lmixInverseBack(th, y, x, 1, 1, dth, buf)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call set, want 0", allocs)
	}
}

// lmcFuzzK is the number of components of the fuzzed map: θ has 11 entries.
const lmcFuzzK = 3

// lmcEncodeTheta packs float64s into the byte layout FuzzLogisticMixture
// decodes.
func lmcEncodeTheta(th ...float64) []byte {
	b := make([]byte, 8*len(th))
	for i, v := range th {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

// FuzzLogisticMixture fuzzes the K = 3 map at x with conditioner outputs
// decoded from raw: 11 little-endian float64s, [π (3) | μ (3) | ŝ (3) | â |
// b] (missing ones are 0, extra bytes ignored). Any θ is allowed (the layer
// reads non-finite ones as finite); a NaN x is skipped. Each input is
// checked with lmcCheckPoint: no NaN, finite values and gradients where
// promised, VJPs equal to the plain passes, a bounded number of
// evaluations and the round trip.
func FuzzLogisticMixture(f *testing.F) {
	f.Add(0.0, []byte{})
	f.Add(1.5, lmcEncodeTheta(0.3, -1, 2, -0.5, 0.2, 1, 0.4, -1.3, 0.9, 0.7, -0.2))
	f.Add(1e300, lmcEncodeTheta(0.3, -1, 2, -0.5, 0.2, 1, 0.4, -1.3, 0.9, 0.7, -0.2))
	f.Add(-1e300, lmcEncodeTheta(1e3, -1e3, 1e3, -1e3, 1e3, -1e3, 1e3, -1e3, 1e3, -1e3, 1e3))
	f.Add(0.5, lmcEncodeTheta(0, 0, 0, 0, 1, 1e3, -1e3, -1e3, -1e3, 0, 0))
	f.Add(3.0, lmcEncodeTheta(1e300, -1e300, 0, 1e300, -1e300, 0, 1e300, -1e300, 0, 1e300, -1e300))
	f.Add(-7.0, lmcEncodeTheta(math.Inf(1), math.NaN(), math.Inf(-1), math.Inf(1), math.NaN(), math.Inf(-1), math.Inf(1), math.NaN(), math.Inf(-1), math.NaN(), math.Inf(1)))
	f.Add(math.MaxFloat64, lmcEncodeTheta(745, -745, 0, 1e8, -1e8, 0, 20, -20, 0, 20, 1e8))
	f.Fuzz(func(t *testing.T, x float64, raw []byte) {
		th := make([]float64, 3*lmcFuzzK+2)
		for i := range th {
			if len(raw) >= 8*(i+1) {
				th[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		}
		if math.IsNaN(x) {
			t.Skip("NaN x")
		}
		lmcCheckPoint(t, th, x, 1, 1)
		lmcCheckPoint(t, th, x, -0.5, 2)
		// Also where the map is evaluated most often: at each component's
		// mean, and at the output value of x.
		for _, mu := range th[lmcFuzzK : 2*lmcFuzzK] {
			lmcCheckPoint(t, th, lmixFinite(mu), 1, -1)
		}
		if y, _ := lmixForward(th, x, nil); lmcFinite(y) {
			lmcCheckPoint(t, th, y, 1, 1)
		}
	})
}

func BenchmarkLogisticMixtureMap(b *testing.B) {
	rng := rand.New(rand.NewPCG(10, 10))
	const n = 1024
	ths := make([][]float64, n)
	xs := make([]float64, n)
	for i := range ths {
		ths[i] = lmcRandTheta(rng, 4, 1)
		xs[i] = 2 * rng.NormFloat64()
	}
	var arr [lmixBufPer * lmixStackK]float64
	buf := arr[:]
	dth := make([]float64, len(ths[0]))
	b.Run("Forward", func(b *testing.B) {
		for i := range b.N {
			lmixForward(ths[i%n], xs[i%n], buf)
		}
	})
	b.Run("ForwardVJP", func(b *testing.B) {
		for i := range b.N {
			lmixForwardVJP(ths[i%n], xs[i%n], 1, 1, dth, buf)
		}
	})
	b.Run("Inverse", func(b *testing.B) {
		for i := range b.N {
			lmixInverse(ths[i%n], xs[i%n], buf)
		}
	})
	b.Run("InverseVJP", func(b *testing.B) {
		for i := range b.N {
			lmixInverseVJP(ths[i%n], xs[i%n], 1, 1, dth, buf)
		}
	})
}
