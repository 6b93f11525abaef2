package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// rqsTestConfig is the configuration most tests use: 8 bins on [−3, 3]
// with the default minimums.
var rqsTestConfig = SplineConfig{Bins: 8, Bound: 3}.withDefaults()

// rqsRandTheta returns θ for c with independent normal entries of standard
// deviation scale.
func rqsRandTheta(rng *rand.Rand, c SplineConfig, scale float64) []float64 {
	th := make([]float64, c.NumParams())
	for i := range th {
		th[i] = scale * rng.NormFloat64()
	}
	return th
}

// rqsRefKnots computes the knots of one side the plain way (as nflows does):
// softmax, minimum, cumulative sum, scaled to [−B, B] with the ends set.
func rqsRefKnots(c SplineConfig, th []float64, m float64) []float64 {
	K := c.Bins
	mx := th[0]
	for _, v := range th[:K] {
		mx = math.Max(mx, v)
	}
	p := make([]float64, K)
	var sum float64
	for i := range p {
		p[i] = math.Exp(th[i] - mx)
		sum += p[i]
	}
	q := make([]float64, K+1)
	for i := range p {
		q[i+1] = q[i] + m + (1-float64(K)*m)*p[i]/sum
	}
	for i := range q {
		q[i] = -c.Bound + 2*c.Bound*q[i]
	}
	q[0], q[K] = -c.Bound, c.Bound
	return q
}

// rqsRefSlopes returns the K+1 knot slopes computed the plain way.
func rqsRefSlopes(c SplineConfig, th []float64) []float64 {
	K := c.Bins
	d := make([]float64, K+1)
	d[0], d[K] = 1, 1
	shift := math.Log(math.Exp(1-c.MinDerivative) - 1)
	for i := 1; i < K; i++ {
		d[i] = c.MinDerivative + math.Log1p(math.Exp(th[2*K+i-1]+shift))
	}
	return d
}

// rqsRefForward is an independent, allocation-happy transcription of the
// forward spline (nflows' formula), for moderate θ only.
func rqsRefForward(c SplineConfig, th []float64, x float64) (y, ld float64) {
	if x < -c.Bound || x > c.Bound {
		return x, 0
	}
	K := c.Bins
	xs := rqsRefKnots(c, th[:K], c.MinBinWidth)
	ys := rqsRefKnots(c, th[K:2*K], c.MinBinHeight)
	d := rqsRefSlopes(c, th)
	k := 0
	for k < K-1 && x >= xs[k+1] {
		k++
	}
	w, h := xs[k+1]-xs[k], ys[k+1]-ys[k]
	s := h / w
	xi := (x - xs[k]) / w
	t := xi * (1 - xi)
	den := s + (d[k+1]+d[k]-2*s)*t
	y = ys[k] + h*(s*xi*xi+d[k]*t)/den
	gp := s * s * (d[k+1]*xi*xi + 2*s*t + d[k]*(1-xi)*(1-xi)) / (den * den)
	return y, math.Log(gp)
}

// rqsNearKnot reports whether v is within tol of one of the knots qs.
func rqsNearKnot(qs []float64, v, tol float64) bool {
	for _, q := range qs {
		if math.Abs(v-q) < tol {
			return true
		}
	}
	return false
}

func rqsFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func TestRQSIdentityAtZero(t *testing.T) {
	for _, c := range []SplineConfig{
		rqsTestConfig,
		SplineConfig{Bins: 2, Bound: 1}.withDefaults(),
		SplineConfig{Bins: 5, Bound: 7.5, MinBinWidth: 0.01, MinBinHeight: 0.05, MinDerivative: 0.3}.withDefaults(),
	} {
		th := make([]float64, c.NumParams())
		for i := 0; i <= 1000; i++ {
			x := -1.2*c.Bound + 2.4*c.Bound*float64(i)/1000
			y, ld := c.rqsForward(th, x)
			// Uniform bins and unit slopes: g(x) = x exactly in real
			// arithmetic; the knots, the slope shift c₀ and the rational
			// expression each round, so allow a few ulps of B.
			if math.Abs(y-x) > 1e-14*c.Bound || math.Abs(ld) > 1e-14 {
				t.Fatalf("%+v: θ=0, x=%v: got y=%v logDeriv=%v, want identity", c, x, y, ld)
			}
			xb, ldb := c.rqsInverse(th, x)
			if math.Abs(xb-x) > 1e-14*c.Bound || math.Abs(ldb) > 1e-14 {
				t.Fatalf("%+v: θ=0, inverse at %v: got x=%v logDeriv=%v", c, x, xb, ldb)
			}
		}
	}
}

func TestRQSMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: 3, Bound: 2}.withDefaults(), SplineConfig{Bins: 70, Bound: 5}.withDefaults()} {
		for range 200 {
			th := rqsRandTheta(rng, c, 1+2*rng.Float64())
			x := c.Bound * (3*rng.Float64() - 1.5)
			y, ld := c.rqsForward(th, x)
			yr, ldr := rqsRefForward(c, th, x)
			// Two transcriptions of the same formula, differing only in
			// rounding (the symmetric evaluation near the upper knot):
			// agree to ~1e-12 absolute in y (|y| ≤ B) and in log g'.
			if math.Abs(y-yr) > 1e-12*c.Bound || math.Abs(ld-ldr) > 1e-10 {
				t.Fatalf("K=%d x=%v: got (%v, %v), reference (%v, %v)", c.Bins, x, y, ld, yr, ldr)
			}
		}
	}
}

// rqsRoundTripTol is the tolerance of |g⁻¹(g(x)) − x| for B ≤ 10: the
// forward pass rounds y to a few ulps of max(B, |x|), and the inverse turns
// an error ε in y into ε/g' in x, so the tolerance is relative to
// max(1, |x|) and scaled by the local condition number 1/g'(x). Measured
// errors stay below 1.1e-15 of this scale, even for extreme θ.
func rqsRoundTripTol(x, ld float64) float64 {
	return 1e-13 * math.Max(1, math.Abs(x)) * (1 + math.Exp(-ld))
}

// rqsRoundTripOK reports whether xb is an acceptable g⁻¹(y) for y = g(x) and
// ld = log g'(x). Either xb is within rqsRoundTripTol(x, ld) of x (scaled
// for B as well, for configurations with B ≠ O(1)), or xb solves g(xb) = y
// up to a small mixed backward error:
//
//	|g(xb) − y| ≤ 64ε·(max(|y|, B) + g'(xb)·max(|xb|, B)),
//
// i.e. xb is the exact inverse of a y perturbed by a few ulps, up to a
// few-ulp perturbation of xb itself. The second criterion is the one that
// always holds: when extreme θ make g flat to below rounding over part of
// a bin (s ≈ 1e-9 next to a slope of 1e3 gives g' down to ≈ s²/1e3 =
// 1e-21), many x share one float64 y and the inverse may return any of
// them, far from x in absolute terms although g'(x) itself is not tiny.
// Measured mixed backward errors stay below 6ε.
func rqsRoundTripOK(c SplineConfig, th []float64, x, y, ld, xb float64) bool {
	scale := math.Max(1, c.Bound)
	if math.Abs(xb-x) <= scale*rqsRoundTripTol(x, ld) {
		return true
	}
	yb, ldb := c.rqsForward(th, xb)
	const eps = 0x1p-52
	return math.Abs(yb-y) <= 64*eps*(math.Max(math.Abs(y), c.Bound)+math.Exp(ldb)*math.Max(math.Abs(xb), c.Bound))
}

func TestRQSRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: 2, Bound: 1}.withDefaults(), SplineConfig{Bins: 16, Bound: 10, MinDerivative: 1e-6}.withDefaults(),
		SplineConfig{Bins: 70, Bound: 3}.withDefaults() /* > rqsStackBins: the allocating path */} {
		K := c.Bins
		for range 500 {
			th := rqsRandTheta(rng, c, 1+2*rng.Float64())
			xs := rqsRefKnots(c, th[:K], c.MinBinWidth)
			ys := rqsRefKnots(c, th[K:2*K], c.MinBinHeight)
			// The inverse maps each y-knot to its x-knot (up to the
			// rounding of the reference's own cumulative sums).
			for k, yk := range ys {
				if xb, _ := c.rqsInverse(th, yk); math.Abs(xb-xs[k]) > 1e-12*c.Bound {
					t.Fatalf("K=%d: inverse of y-knot %d = %v, want x-knot %v", K, k, xb, xs[k])
				}
			}
			pts := []float64{-c.Bound, c.Bound, math.Nextafter(c.Bound, 0), math.Nextafter(-c.Bound, 0),
				math.Nextafter(c.Bound, 10), math.Nextafter(-c.Bound, -10), 0}
			pts = append(pts, xs...)
			for range 20 {
				pts = append(pts, c.Bound*(3*rng.Float64()-1.5))
			}
			for _, x := range pts {
				y, ld := c.rqsForward(th, x)
				xb, ldb := c.rqsInverse(th, y)
				if math.Abs(xb-x) > rqsRoundTripTol(x, ld) {
					t.Fatalf("K=%d x=%v: y=%v, inverse %v (err %g, g'=%g)", K, x, y, xb, xb-x, math.Exp(ld))
				}
				// log (g⁻¹)'(y) = −log g'(x): both evaluate the same
				// expression, at points that differ by the round-trip
				// error, which moves log g' by |∂ log g'/∂x| times it.
				_, _, dldx := c.rqsForwardVJP(th, x, 0, 1, make([]float64, c.NumParams()))
				if math.Abs(ldb+ld) > math.Abs(dldx)*rqsRoundTripTol(x, ld)+1e-12*(1+math.Abs(ld)) {
					t.Fatalf("K=%d x=%v: forward logDeriv %v, inverse %v", K, x, ld, ldb)
				}
			}
			// Knots map to knots exactly (the evaluation starts from the
			// nearer knot), and y-knots back to x-knots.
			xs, ys = rqsTestKnots(c, th[:K], c.MinBinWidth), rqsTestKnots(c, th[K:2*K], c.MinBinHeight)
			for i := range xs {
				if y, _ := c.rqsForward(th, xs[i]); math.Abs(y-ys[i]) > 4e-16*c.Bound {
					t.Fatalf("K=%d knot %d: g(%v) = %v, want %v", K, i, xs[i], y, ys[i])
				}
				if x, _ := c.rqsInverse(th, ys[i]); math.Abs(x-xs[i]) > 4e-16*c.Bound {
					t.Fatalf("K=%d knot %d: g⁻¹(%v) = %v, want %v", K, i, ys[i], x, xs[i])
				}
			}
			if y, _ := c.rqsForward(th, c.Bound); y != c.Bound {
				t.Fatalf("g(B) = %v, want B exactly", y)
			}
			if y, _ := c.rqsForward(th, -c.Bound); y != -c.Bound {
				t.Fatalf("g(−B) = %v, want −B exactly", y)
			}
		}
	}
}

func TestRQSLogDerivFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	c := rqsTestConfig
	K := c.Bins
	const h = 1e-6
	for range 2000 {
		th := rqsRandTheta(rng, c, 1+2*rng.Float64())
		xs := rqsRefKnots(c, th[:K], c.MinBinWidth)
		x := c.Bound * (2*rng.Float64() - 1)
		if rqsNearKnot(xs, x, 1e-4) {
			continue
		}
		_, ld := c.rqsForward(th, x)
		yp, _ := c.rqsForward(th, x+h)
		ym, _ := c.rqsForward(th, x-h)
		fd := (yp - ym) / (2 * h)
		gp := math.Exp(ld)
		// Central difference: truncation h²·|g'''|/6 (g''' can reach ~1e4
		// in narrow, steep bins, giving ~1e-9) plus rounding
		// ~ulp(B)/h ≈ 1e-9; a relative 1e-6 leaves margin.
		if math.Abs(fd-gp) > 1e-6*math.Max(1, gp) {
			t.Fatalf("x=%v: g'=%v, finite difference %v", x, gp, fd)
		}
	}
}

// rqsFDCheck compares an analytic gradient with a central difference of f
// with step h. The tolerance 1e-5·max(1, |·|) covers truncation
// (h²·|f⁽³⁾|/6: the spline's third derivatives reach ~1e4 in narrow
// bins, and log g' is one derivative rougher than g) and rounding
// (~1e-16·|L|/h ≈ 1e-9), both well below it for the θ scales used.
func rqsFDCheck(t *testing.T, what string, an float64, f func(float64) float64, at, h float64) {
	t.Helper()
	fd := (f(at+h) - f(at-h)) / (2 * h)
	if math.Abs(fd-an) > 1e-5*math.Max(1, math.Max(math.Abs(an), math.Abs(fd))) {
		t.Fatalf("%s: analytic %v, finite difference %v", what, an, fd)
	}
}

func TestRQSForwardVJP(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: 2, Bound: 1.5}.withDefaults(), SplineConfig{Bins: 5, Bound: 4, MinBinWidth: 0.02, MinBinHeight: 0.05, MinDerivative: 0.1}.withDefaults()} {
		K := c.Bins
		n := c.NumParams()
		for trial := 0; trial < 300; trial++ {
			th := rqsRandTheta(rng, c, 1+2*rng.Float64())
			xs := rqsRefKnots(c, th[:K], c.MinBinWidth)
			x := c.Bound * (2*rng.Float64() - 1)
			if rqsNearKnot(xs, x, 1e-4) {
				trial-- // resample away from the knots
				continue
			}
			gy, gl := rng.NormFloat64(), rng.NormFloat64()
			L := func(th []float64, x float64) float64 {
				y, ld := c.rqsForward(th, x)
				return gy*y + gl*ld
			}
			dth := make([]float64, n)
			dth[0] = 0.25 // the VJP must add, not overwrite
			y, ld, dx := c.rqsForwardVJP(th, x, gy, gl, dth)
			dth[0] -= 0.25
			if yf, ldf := c.rqsForward(th, x); y != yf || ld != ldf {
				t.Fatalf("VJP values (%v, %v) differ from forward (%v, %v)", y, ld, yf, ldf)
			}
			rqsFDCheck(t, "dL/dx", dx, func(v float64) float64 { return L(th, v) }, x, 1e-6)
			for i := range th {
				tp := append([]float64(nil), th...)
				rqsFDCheck(t, "dL/dθ", dth[i], func(v float64) float64 { tp[i] = v; return L(tp, x) }, th[i], 1e-6)
			}
		}
	}
}

func TestRQSInverseVJP(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: 2, Bound: 1.5}.withDefaults(), SplineConfig{Bins: 5, Bound: 4, MinBinWidth: 0.02, MinBinHeight: 0.05, MinDerivative: 0.1}.withDefaults()} {
		K := c.Bins
		n := c.NumParams()
		for trial := 0; trial < 300; trial++ {
			th := rqsRandTheta(rng, c, 1+2*rng.Float64())
			ys := rqsRefKnots(c, th[K:2*K], c.MinBinHeight)
			y := c.Bound * (2*rng.Float64() - 1)
			if rqsNearKnot(ys, y, 1e-4) {
				trial--
				continue
			}
			gx, gl := rng.NormFloat64(), rng.NormFloat64()
			L := func(th []float64, y float64) float64 {
				x, ld := c.rqsInverse(th, y)
				return gx*x + gl*ld
			}
			dth := make([]float64, n)
			x, ld, dy := c.rqsInverseVJP(th, y, gx, gl, dth)
			if xf, ldf := c.rqsInverse(th, y); x != xf || ld != ldf {
				t.Fatalf("VJP values (%v, %v) differ from inverse (%v, %v)", x, ld, xf, ldf)
			}
			rqsFDCheck(t, "dL/dy", dy, func(v float64) float64 { return L(th, v) }, y, 1e-6)
			for i := range th {
				tp := append([]float64(nil), th...)
				rqsFDCheck(t, "dL/dθ", dth[i], func(v float64) float64 { tp[i] = v; return L(tp, y) }, th[i], 1e-6)
			}
		}
	}
}

func TestRQSOutside(t *testing.T) {
	c := rqsTestConfig
	th := rqsRandTheta(rand.New(rand.NewPCG(6, 6)), c, 2)
	for _, x := range []float64{math.Nextafter(c.Bound, 10), -math.Nextafter(c.Bound, 10), 4, -100, 1e300, -math.MaxFloat64, math.Inf(1)} {
		dth := make([]float64, c.NumParams())
		y, ld, dx := c.rqsForwardVJP(th, x, 1.5, 2.5, dth)
		xb, ldb, dy := c.rqsInverseVJP(th, x, 1.5, 2.5, dth)
		if y != x || ld != 0 || dx != 1.5 || xb != x || ldb != 0 || dy != 1.5 {
			t.Fatalf("outside at %v: got %v %v %v / %v %v %v", x, y, ld, dx, xb, ldb, dy)
		}
		for _, g := range dth {
			if g != 0 {
				t.Fatalf("outside at %v: nonzero θ gradient %v", x, dth)
			}
		}
	}
}

// rqsExtremeThetas returns parameter vectors with extreme entries for c.
func rqsExtremeThetas(rng *rand.Rand, c SplineConfig) [][]float64 {
	n := c.NumParams()
	fill := func(f func(i int) float64) []float64 {
		th := make([]float64, n)
		for i := range th {
			th[i] = f(i)
		}
		return th
	}
	var out [][]float64
	for _, v := range []float64{0, 1e3, -1e3, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 5e-324, 745, -745, 710} {
		out = append(out, fill(func(int) float64 { return v }))
		out = append(out, fill(func(i int) float64 { return v * float64(1-2*(i%2)) }))
		out = append(out, fill(func(i int) float64 { return v * float64(i%3-1) }))
	}
	for _, scale := range []float64{10, 1e3, 1e10, 1e300} {
		for range 5 {
			out = append(out, rqsRandTheta(rng, c, scale))
		}
	}
	// Widths and heights pulling in opposite directions, with extreme
	// slopes: the steepest and flattest bins the parameterisation allows.
	K := c.Bins
	for _, v := range []float64{30, 1e3, 1e300} {
		for _, dv := range []float64{-1e300, -50, 50, 1e300} {
			out = append(out, fill(func(i int) float64 {
				switch {
				case i < K:
					return v * float64(i%2)
				case i < 2*K:
					return -v * float64(i%2)
				}
				return dv * float64(1-2*(i%2))
			}))
		}
	}
	return out
}

func TestRQSExtremeInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: 4, Bound: 3}.withDefaults(), SplineConfig{Bins: 3, Bound: 1e-100, MinBinWidth: 1e-9, MinBinHeight: 1e-9, MinDerivative: 1e-9}.withDefaults(), SplineConfig{Bins: 6, Bound: 1e100, MinBinWidth: 1e-9, MinBinHeight: 0.1, MinDerivative: 0.999}.withDefaults()} {
		if err := c.validate(); err != nil {
			t.Fatal(err)
		}
		K := c.Bins
		for _, th := range rqsExtremeThetas(rng, c) {
			xs := rqsTestKnots(c, th[:K], c.MinBinWidth)
			ys := rqsTestKnots(c, th[K:2*K], c.MinBinHeight)
			B := c.Bound
			pts := []float64{0, B, -B, math.Nextafter(B, 0), math.Nextafter(-B, 0), math.Nextafter(B, math.Inf(1)),
				math.Nextafter(-B, math.Inf(-1)), 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 5e-324, -5e-324, B / 2, -B / 3}
			pts = append(pts, xs...)
			pts = append(pts, ys...)
			for _, q := range xs {
				pts = append(pts, math.Nextafter(q, math.Inf(1)), math.Nextafter(q, math.Inf(-1)))
			}
			for range 10 {
				pts = append(pts, B*(2*rng.Float64()-1))
			}
			for _, x := range pts {
				checkRQSPoint(t, c, th, x, 1, 1)
				checkRQSPoint(t, c, th, x, 1e3, -1e3)
			}
		}
	}
}

// TestRQSRandomExtremes mixes huge, clamped and moderate θ entries at
// random, over configurations at the edges of what validate accepts.
func TestRQSRandomExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	picks := []float64{-1e300, 1e300, -1e3, 1e3, 0, 998.5, 999.5, -20, 20}
	for _, c := range []SplineConfig{
		rqsFuzzConfig, rqsTestConfig, SplineConfig{Bins: 70, Bound: 3}.withDefaults(),
		SplineConfig{Bins: 3, Bound: 1e-100, MinBinWidth: 1e-9, MinBinHeight: 1e-9, MinDerivative: 1e-9}.withDefaults(),
		SplineConfig{Bins: 6, Bound: 1e100, MinBinWidth: 1e-9, MinBinHeight: 1e-9, MinDerivative: 1e-9}.withDefaults(),
	} {
		for range 5000 {
			th := make([]float64, c.NumParams())
			for i := range th {
				switch rng.IntN(4) {
				case 0:
					th[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(6)))
				case 1:
					th[i] = picks[rng.IntN(len(picks))]
				default:
					th[i] = rng.NormFloat64() * 30
				}
			}
			x := c.Bound * (2*rng.Float64() - 1)
			if rng.IntN(4) == 0 { // at or next to a knot
				xs := rqsTestKnots(c, th[:c.Bins], c.MinBinWidth)
				x = xs[rng.IntN(len(xs))]
				for range rng.IntN(3) {
					x = math.Nextafter(x, []float64{math.Inf(1), math.Inf(-1)}[rng.IntN(2)])
				}
			}
			checkRQSPoint(t, c, th, x, rng.NormFloat64(), rng.NormFloat64())
		}
	}
}

// rqsTestKnots returns the K+1 knots of one side as the package computes
// them (bit for bit): safe for extreme θ, and exact knots to test at.
func rqsTestKnots(c SplineConfig, th []float64, m float64) []float64 {
	p := make([]float64, len(th))
	rqsSoftmax(p, th)
	_ = m
	q := make([]float64, len(th)+1)
	for k := range th {
		_, lo, _, _ := rqsKnots(p, m, c.Bound, 0, k)
		q[k] = lo
	}
	q[len(th)] = c.Bound
	return q
}

// checkRQSPoint checks that all four functions give finite values and
// gradients at x (used as both x and y) for θ, that the forward and
// inverse VJPs agree with the plain passes, and that the round trip holds
// (rqsRoundTripOK).
func checkRQSPoint(t *testing.T, c SplineConfig, th []float64, x, gy, gl float64) {
	t.Helper()
	n := c.NumParams()
	dth := make([]float64, n)
	y, ld := c.rqsForward(th, x)
	y2, ld2, dx := c.rqsForwardVJP(th, x, gy, gl, dth)
	xi, ldi := c.rqsInverse(th, x)
	xi2, ldi2, dy := c.rqsInverseVJP(th, x, gy, gl, dth)
	for _, v := range append([]float64{y, ld, dx, xi, ldi, dy}, dth...) {
		if !rqsFinite(v) {
			t.Fatalf("K=%d B=%g θ=%v x=%v: non-finite output: y=%v ld=%v dx=%v | x=%v ld=%v dy=%v | dθ=%v",
				c.Bins, c.Bound, th, x, y, ld, dx, xi, ldi, dy, dth)
		}
	}
	if y != y2 || ld != ld2 || xi != xi2 || ldi != ldi2 {
		t.Fatalf("θ=%v x=%v: VJP values differ from plain passes", th, x)
	}
	if xb, _ := c.rqsInverse(th, y); !rqsRoundTripOK(c, th, x, y, ld, xb) {
		t.Fatalf("K=%d B=%g θ=%v: round trip %v → %v → %v (err %g, g'=%g)", c.Bins, c.Bound, th, x, y, xb, xb-x, math.Exp(ld))
	}
}

func TestRQSMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	c := rqsTestConfig
	var thetas [][]float64
	for range 10 {
		thetas = append(thetas, rqsRandTheta(rng, c, 1+2*rng.Float64()))
	}
	extreme := rqsExtremeThetas(rng, c)
	for i, th := range append(thetas, extreme...) {
		strict := i < len(thetas)
		n := 10000
		if strict {
			n = 100000
		}
		prevY, prevX := math.Inf(-1), math.Inf(-1)
		for j := 0; j <= n; j++ {
			v := -1.2*c.Bound + 2.4*c.Bound*float64(j)/float64(n)
			y, _ := c.rqsForward(th, v)
			x, _ := c.rqsInverse(th, v)
			// With moderate θ, g' ≥ ~1e-3 and the grid step is 7.2e-5,
			// so consecutive values differ by far more than rounding:
			// require a strict increase. Extreme θ make g (or g⁻¹) as
			// flat as ~1e-9 (s ≈ 1e-3 next to a slope of 1e3), where the
			// true increase is below an ulp: there require only that
			// values never decrease by more than rounding (2 ulps).
			if strict && (y <= prevY || x <= prevX) {
				t.Fatalf("θ=%v: not strictly increasing at %v: y %v after %v, x %v after %v", th, v, y, prevY, x, prevX)
			}
			if !strict && (y < prevY-2*rqsULP(y) || x < prevX-2*rqsULP(x)) {
				t.Fatalf("θ=%v: decreasing at %v: y %v after %v, x %v after %v", th, v, y, prevY, x, prevX)
			}
			prevY, prevX = y, x
		}
	}
}

// rqsULP returns the spacing of float64 values at v.
func rqsULP(v float64) float64 {
	v = math.Abs(v)
	return math.Nextafter(v, math.Inf(1)) - v
}

func TestSplineConfigValidate(t *testing.T) {
	if err := (SplineConfig{}).validate(); err != nil {
		t.Fatalf("zero config (defaults): %v", err)
	}
	d := SplineConfig{}.withDefaults()
	if d != (SplineConfig{Bins: 8, Bound: 3, MinBinWidth: 1e-3, MinBinHeight: 1e-3, MinDerivative: 1e-3}) {
		t.Fatalf("defaults: %+v", d)
	}
	if got := (SplineConfig{}).NumParams(); got != 23 {
		t.Fatalf("NumParams of defaults = %d, want 23", got)
	}
	if got := (SplineConfig{Bins: 4}).NumParams(); got != 11 {
		t.Fatalf("NumParams(K=4) = %d, want 11", got)
	}
	for _, tc := range []struct {
		c    SplineConfig
		want string
	}{
		{SplineConfig{Bins: 1}, "Bins"},
		{SplineConfig{Bins: -3}, "Bins"},
		{SplineConfig{Bound: -1}, "Bound"},
		{SplineConfig{Bound: math.Inf(1)}, "Bound"},
		{SplineConfig{Bound: math.NaN()}, "Bound"},
		{SplineConfig{Bound: 1e200}, "Bound"},
		{SplineConfig{MinBinWidth: -1e-3}, "MinBinWidth"},
		{SplineConfig{MinBinWidth: math.NaN()}, "MinBinWidth"},
		{SplineConfig{MinBinWidth: 1e-12}, "MinBinWidth"},
		{SplineConfig{Bins: 10, MinBinWidth: 0.1}, "MinBinWidth"},
		{SplineConfig{Bins: 4, MinBinHeight: 0.3}, "MinBinHeight"},
		{SplineConfig{MinBinHeight: -1}, "MinBinHeight"},
		{SplineConfig{MinDerivative: 1}, "MinDerivative"},
		{SplineConfig{MinDerivative: -0.5}, "MinDerivative"},
		{SplineConfig{MinDerivative: math.Inf(1)}, "MinDerivative"},
	} {
		err := tc.c.validate()
		if err == nil {
			t.Errorf("%+v: no error", tc.c)
			continue
		}
		if !strings.HasPrefix(err.Error(), "flows: spline: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %q, want a \"flows: spline: \" error about %s", tc.c, err, tc.want)
		}
	}
	for _, c := range []SplineConfig{
		{Bins: 2, Bound: 1e-100}, {Bins: 64, Bound: 1e100}, {Bins: 9, MinBinWidth: 0.11, MinBinHeight: 0.11, MinDerivative: 0.999},
	} {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestRQSNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, c := range []SplineConfig{rqsTestConfig, SplineConfig{Bins: rqsStackBins, Bound: 3}.withDefaults()} {
		th := rqsRandTheta(rng, c, 2)
		dth := make([]float64, c.NumParams())
		x := 0.3
		allocs := testing.AllocsPerRun(100, func() {
			y, _ := c.rqsForward(th, x)
			c.rqsInverse(th, y)
			c.rqsForwardVJP(th, x, 1, 1, dth)
			c.rqsInverseVJP(th, y, 1, 1, dth)
		})
		if allocs != 0 {
			t.Errorf("K=%d: %v allocations per call set, want 0", c.Bins, allocs)
		}
	}
}

// rqsFuzzBound is the bound of the fuzzed spline; rqsFuzzConfig has K = 4.
const rqsFuzzBound = 3

var rqsFuzzConfig = SplineConfig{Bins: 4, Bound: rqsFuzzBound}.withDefaults()

// rqsEncodeTheta packs float64s into the byte layout FuzzRQSpline decodes.
func rqsEncodeTheta(th ...float64) []byte {
	b := make([]byte, 8*len(th))
	for i, v := range th {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

// FuzzRQSpline fuzzes the K = 4, B = 3 spline at x with θ decoded from
// raw: 11 little-endian float64s (missing ones are 0, extra bytes ignored).
// Non-finite x or θ are outside the contract and skipped.
func FuzzRQSpline(f *testing.F) {
	f.Add(0.0, []byte{})
	f.Add(3.0, rqsEncodeTheta(1, -2, 0.5, 3, 0, 0, -1, 2, 1, -1, 0.5))
	f.Add(-3.0, rqsEncodeTheta(1e300, -1e300, 1e300, -1e300, -1e300, 1e300, 0, 0, 1e300, -1e300, 1e300))
	f.Add(1.5, rqsEncodeTheta(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(-1.5, rqsEncodeTheta(1e3, 1e3, 1e3, 1e3, -1e3, -1e3, -1e3, -1e3, 1e3, -1e3, 1e3))
	f.Add(1e300, rqsEncodeTheta(5, 5, 5))
	f.Add(2.9999999999999996, rqsEncodeTheta(30, -30, 30, -30, -30, 30, -30, 30, -50, 50, -50))
	f.Fuzz(func(t *testing.T, x float64, raw []byte) {
		c := rqsFuzzConfig
		th := make([]float64, c.NumParams())
		for i := range th {
			if len(raw) >= 8*(i+1) {
				th[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			if !rqsFinite(th[i]) {
				t.Skip("non-finite θ")
			}
		}
		if !rqsFinite(x) {
			t.Skip("non-finite x")
		}
		checkRQSPoint(t, c, th, x, 1, 1)
		checkRQSPoint(t, c, th, x, -0.5, 2)
		// Also at the knots nearest x, where bins change.
		xs := rqsTestKnots(c, th[:c.Bins], c.MinBinWidth)
		for _, q := range xs {
			checkRQSPoint(t, c, th, q, 1, -1)
		}
	})
}

func BenchmarkRQSpline(b *testing.B) {
	rng := rand.New(rand.NewPCG(10, 10))
	c := rqsTestConfig
	const n = 1024
	ths := make([][]float64, n)
	xs := make([]float64, n)
	for i := range ths {
		ths[i] = rqsRandTheta(rng, c, 1.5)
		xs[i] = c.Bound * (2*rng.Float64() - 1)
	}
	dth := make([]float64, c.NumParams())
	b.Run("ForwardVJP", func(b *testing.B) {
		for i := range b.N {
			c.rqsForwardVJP(ths[i%n], xs[i%n], 1, 1, dth)
		}
	})
	b.Run("Forward", func(b *testing.B) {
		for i := range b.N {
			c.rqsForward(ths[i%n], xs[i%n])
		}
	})
	b.Run("Inverse", func(b *testing.B) {
		for i := range b.N {
			c.rqsInverse(ths[i%n], xs[i%n])
		}
	})
	b.Run("InverseVJP", func(b *testing.B) {
		for i := range b.N {
			c.rqsInverseVJP(ths[i%n], xs[i%n], 1, 1, dth)
		}
	})
}
