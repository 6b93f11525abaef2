package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// sosRef is a plain transcription of the SOS map: q by its definition and
// the integral by composite Simpson's rule on 2000 panels (exact to
// rounding for these polynomials of degree ≤ 2L ≤ 6... up to the rule's
// O(h⁴) error, about 1e-13 here).
func sosRef(polys, degree int, bound float64, th []float64, x float64) (y, ld float64) {
	q := func(t float64) float64 {
		var s float64
		for k := range polys {
			p := 1.0
			for j := range degree + 1 {
				p += 8 * math.Tanh(th[k*(degree+1)+j]/8) * math.Pow(t, float64(j))
			}
			s += p * p
		}
		return 1e-3 + (1-1e-3)*s/float64(polys)
	}
	t := max(-1, min(1, x/bound))
	const n = 2000
	h := t / n
	sum := q(0) + q(t)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * q(float64(i)*h)
	}
	F := sum * h / 3
	y = bound * F
	if math.Abs(x) > bound {
		y += q(t) * (x - t*bound)
	}
	return y, math.Log(q(t))
}

// bernRef is a plain transcription of the Bernstein map with binomial
// coefficients and powers.
func bernRef(m int, bound float64, th []float64, x float64) (y, ld float64) {
	if math.Abs(x) >= bound {
		return x, 0
	}
	var z float64
	mx := th[0]
	for _, v := range th {
		mx = max(mx, v)
	}
	for _, v := range th {
		z += math.Exp(v - mx)
	}
	delta := make([]float64, m+1) // delta[k] = β_k − β_{k−1}, k = 1 … M
	delta[1], delta[m] = 2*bound/float64(m), 2*bound/float64(m)
	share := 2 * bound * float64(m-2) / float64(m)
	for k := 2; k < m; k++ {
		delta[k] = share * (1e-3 + (1-float64(m-2)*1e-3)*math.Exp(th[k-2]-mx)/z)
	}
	t := (x + bound) / (2 * bound)
	binom := func(n, k int) float64 {
		r := 1.0
		for i := 1; i <= k; i++ {
			r = r * float64(n-k+i) / float64(i)
		}
		return r
	}
	beta := -bound
	var d float64
	for k := 0; k <= m; k++ {
		if k > 0 {
			beta += delta[k]
		}
		y += beta * binom(m, k) * math.Pow(t, float64(k)) * math.Pow(1-t, float64(m-k))
		if k < m {
			d += delta[k+1] * binom(m-1, k) * math.Pow(t, float64(k)) * math.Pow(1-t, float64(m-1-k))
		}
	}
	return y, math.Log(float64(m) / (2 * bound) * d)
}

func TestPolynomialsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 22))
	for range 300 {
		polys, degree, bound := 1+rng.IntN(3), rng.IntN(4), 0.5+3*rng.Float64()
		tr := SumOfSquares(polys, degree, bound)
		th := dsfRandTheta(rng, tr.Params, 1)
		x := 2 * bound * rng.NormFloat64()
		y, ld := tr.Forward(th, x)
		ry, rld := sosRef(polys, degree, bound, th, x)
		if math.Abs(y-ry) > 1e-9*max(1, math.Abs(ry)) || math.Abs(ld-rld) > 1e-12*max(1, math.Abs(rld)) {
			t.Fatalf("SOS %d×%d B=%v θ=%v x=%v: (%v, %v), reference (%v, %v)", polys, degree, bound, th, x, y, ld, ry, rld)
		}
	}
	for range 300 {
		m, bound := 4+rng.IntN(20), 0.5+3*rng.Float64()
		tr := Bernstein(m, bound)
		th := dsfRandTheta(rng, tr.Params, 2)
		x := 1.2 * bound * (2*rng.Float64() - 1)
		y, ld := tr.Forward(th, x)
		ry, rld := bernRef(m, bound, th, x)
		if math.Abs(y-ry) > 1e-12*max(1, math.Abs(ry)) || math.Abs(ld-rld) > 1e-10*max(1, math.Abs(rld)) {
			t.Fatalf("Bernstein %d B=%v θ=%v x=%v: (%v, %v), reference (%v, %v)", m, bound, th, x, y, ld, ry, rld)
		}
	}
}

// polyCheckPoint checks tr at x (as x and as y) for θ: finite values and
// gradients for every finite θ and x, and the round trip: within
// 1e-10·max(1, |x|)·(1 + e^{−ld}) (the solver's 1e-13 plus the output's
// rounding amplified by the inverse slope, at most 1e3 for SOS and
// bounded for Bernstein) or to a backward error of 1e-12·max(1, |y|).
func polyCheckPoint(t *testing.T, tr Transformer, th []float64, x float64) {
	t.Helper()
	y, ld := tr.Forward(th, x)
	xi, ldi := tr.Inverse(th, x)
	dth := make([]float64, len(th))
	dx := tr.ForwardVJP(th, x, y, 1, -0.5, dth)
	all := append([]float64{y, ld, xi, ldi, dx}, dth...)
	for _, v := range all {
		if !lmcFinite(v) && math.Abs(x) < 1e300 {
			t.Fatalf("%s θ=%v x=%v: non-finite: y=%v ld=%v x'=%v ld'=%v dx=%v dθ=%v", tr.Name, th, x, y, ld, xi, ldi, dx, dth)
		}
		if math.IsNaN(v) {
			t.Fatalf("%s θ=%v x=%v: NaN", tr.Name, th, x)
		}
	}
	if !lmcFinite(y) {
		return
	}
	xb, _ := tr.Inverse(th, y)
	if math.Abs(xb-x) <= 1e-10*max(1, math.Abs(x))*(1+math.Exp(-ld)) {
		return
	}
	if yb, _ := tr.Forward(th, xb); math.Abs(yb-y) > 1e-12*max(1, math.Abs(y)) {
		t.Fatalf("%s θ=%v: round trip %v → %v → %v (err %g, ld %v)", tr.Name, th, x, y, xb, xb-x, ld)
	}
}

var polyExtremeXs = []float64{0, 1, -1, 2.4999999999999996, -2.5, 2.5, 2.5000000000000004, 1e3, -1e3, 1e100, -1e100, 1e290, -1e290, 5e-324}

func TestPolynomialsExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 22))
	for _, tr := range []Transformer{SumOfSquares(3, 2, 2.5), SumOfSquares(1, 4, 2.5), SumOfSquaresUnitTails(3, 3, 2.5), Bernstein(4, 2.5), Bernstein(16, 2.5)} {
		var thetas [][]float64
		for _, v := range []float64{0, 1, -1, 30, -30, 1e3, -1e3, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64} {
			for pat := range 3 {
				th := make([]float64, tr.Params)
				for i := range th {
					th[i] = v * float64([]int{1, 1 - 2*(i%2), i%3 - 1}[pat])
				}
				thetas = append(thetas, th)
			}
		}
		for range 30 {
			thetas = append(thetas, dsfRandTheta(rng, tr.Params, 10))
		}
		for _, th := range thetas {
			for _, x := range polyExtremeXs {
				polyCheckPoint(t, tr, th, x)
				polyCheckPoint(t, tr, th, -x)
			}
			for range 20 {
				polyCheckPoint(t, tr, th, 3*rng.NormFloat64())
			}
		}
	}
}

// TestPolynomialsContinuity checks that the maps and their slopes join at
// ±B: the values on either side of the bound differ by the slope times
// the step, and the log-derivatives by little.
func TestPolynomialsContinuity(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 22))
	const B = 2.5
	for _, tr := range []Transformer{SumOfSquares(2, 3, B), Bernstein(9, B)} {
		for range 50 {
			th := dsfRandTheta(rng, tr.Params, 1.5)
			for _, e := range []float64{B, -B} {
				in, out := e*(1-1e-12), e*(1+1e-12)
				yi, li := tr.Forward(th, in)
				yo, lo := tr.Forward(th, out)
				if math.Abs(yo-yi) > 1.01*math.Exp(li)*math.Abs(out-in)+1e-13*max(1, math.Abs(yi)) || math.Abs(lo-li) > 1e-9 {
					t.Fatalf("%s at %v: (%v, %v) inside, (%v, %v) outside", tr.Name, e, yi, li, yo, lo)
				}
			}
		}
	}
}

// FuzzSumOfSquares fuzzes SumOfSquares(2, 3, 2.5) at x with θ decoded from
// raw (8 little-endian float64s, missing ones 0, non-finite read as the
// layers read them).
func FuzzSumOfSquares(f *testing.F) {
	polyFuzz(f, SumOfSquares(2, 3, 2.5))
}

// FuzzSumOfSquaresUnitTails fuzzes SumOfSquaresUnitTails(2, 3, 2.5) as
// FuzzSumOfSquares does.
func FuzzSumOfSquaresUnitTails(f *testing.F) {
	polyFuzz(f, SumOfSquaresUnitTails(2, 3, 2.5))
}

// TestSumOfSquaresUnitTails checks the tails of slope 1: beyond ±B the
// map is f(±B) + (x ∓ B) with log-derivative 0, continuous at ±B, and
// equal to SumOfSquares' inside.
func TestSumOfSquaresUnitTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 22))
	const B = 2.5
	old, tr := SumOfSquares(2, 3, B), SumOfSquaresUnitTails(2, 3, B)
	for range 50 {
		th := dsfRandTheta(rng, tr.Params, 3)
		for _, x := range []float64{0, 1.3, -2.1, B, -B} {
			y1, l1 := old.Forward(th, x)
			y2, l2 := tr.Forward(th, x)
			if y1 != y2 || l1 != l2 {
				t.Fatalf("θ=%v x=%v: (%v, %v), SumOfSquares (%v, %v)", th, x, y2, l2, y1, l1)
			}
		}
		for _, e := range []float64{B, -B} {
			ye, _ := tr.Forward(th, e)
			for _, d := range []float64{1e-12, 1, 1e3, 1e12} {
				x := e + math.Copysign(d, e)
				y, l := tr.Forward(th, x)
				if want := ye + math.Copysign(d, e); math.Abs(y-want) > 1e-15*max(1, math.Abs(want)) || l != 0 {
					t.Fatalf("θ=%v x=%v: (%v, %v), want (%v, 0)", th, x, y, l, want)
				}
			}
		}
	}
}

// FuzzBernstein fuzzes Bernstein(10, 2.5) at x with θ decoded from raw (8
// little-endian float64s).
func FuzzBernstein(f *testing.F) {
	polyFuzz(f, Bernstein(10, 2.5))
}

func polyFuzz(f *testing.F, tr Transformer) {
	f.Add(0.0, []byte{})
	f.Add(2.5, lmcEncodeTheta(1, -2, 3, -4, 5, -6, 7, -8))
	f.Add(-2.4999999999999996, lmcEncodeTheta(30, -30, 30, -30, 30, -30, 30, -30))
	f.Add(1e290, lmcEncodeTheta(math.MaxFloat64, -math.MaxFloat64, 0, 1e300))
	f.Add(0.7, lmcEncodeTheta(math.Inf(1), math.NaN(), math.Inf(-1)))
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
		polyCheckPoint(t, tr, th, x)
	})
}
