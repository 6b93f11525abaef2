package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// circWrap maps v to [−π, π).
func circWrap(v float64) float64 {
	_, r := circDecompose(v)
	if r == math.Pi {
		r = -math.Pi
	}
	return r
}

// TestCircularSplineLift checks the lift's defining properties at random θ:
// F(x + 2π) = F(x) + 2π, a continuous slope across ±π (the end slopes
// match), and, read modulo 2π, a bijection of the circle whose inverse
// undoes it.
func TestCircularSplineLift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 33))
	for _, bins := range []int{2, 3, 8, 20} {
		tr := CircularSpline(bins)
		for range 200 {
			th := dsfRandTheta(rng, tr.Params, 1.5)
			th[len(th)-1] = 10 * rng.NormFloat64() // any rotation
			x := math.Pi * (2*rng.Float64() - 1)
			y, ld := tr.Forward(th, x)
			for _, k := range []float64{-3, -1, 1, 2} {
				y2, ld2 := tr.Forward(th, x+2*math.Pi*k)
				if math.Abs(y2-y-2*math.Pi*k) > 1e-12*max(1, math.Abs(y2)) || math.Abs(ld2-ld) > 1e-9 {
					t.Fatalf("bins %d: F(x + 2π·%v) − F(x) = %v, log-derivatives %v, %v", bins, k, y2-y, ld2, ld)
				}
			}
			_, lo := tr.Forward(th, -math.Pi)
			_, hi := tr.Forward(th, math.Pi*(1-1e-15))
			if math.Abs(lo-hi) > 1e-9 {
				t.Fatalf("bins %d: log-derivative %v at −π, %v just below π", bins, lo, hi)
			}
			// On the circle: wrap(F(x)) and back.
			a := circWrap(y)
			xb, ldb := tr.Inverse(th, a)
			// The output's rounding (ulps of |F(x)|, up to ~30 with the
			// rotation) turned into an error in x by the inverse slope.
			if d := math.Abs(circWrap(xb - x)); d > 8*0x1p-52*max(1, math.Abs(y))*(1+math.Exp(-ld)) {
				t.Fatalf("bins %d: x = %v, F(x) mod 2π = %v, back to %v", bins, x, a, xb)
			}
			if math.Abs(ldb+ld) > 1e-9 {
				t.Fatalf("bins %d: inverse log-derivative %v, forward %v", bins, ldb, ld)
			}
		}
	}
}

// TestCircularSplineCircleDensity checks that the circle map pushes the
// uniform density forward to a density: ∫ F′ over one turn is 2π.
func TestCircularSplineCircleDensity(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 33))
	tr := CircularSpline(6)
	th := dsfRandTheta(rng, tr.Params, 1)
	const n = 200000
	var sum float64
	for i := range n {
		x := -math.Pi + 2*math.Pi*(float64(i)+0.5)/n
		_, ld := tr.Forward(th, x)
		sum += math.Exp(ld)
	}
	// The midpoint rule on a periodic integrand that is continuous with
	// kinks at the knots (the spline is C¹, so F′ is only C⁰): an error
	// of order h²·(the kinks' slope jumps) ≈ 1e-9·K, so 1e-7 (a wrong
	// log-derivative is off by O(1)).
	if got := sum * 2 * math.Pi / n; math.Abs(got-2*math.Pi) > 1e-7 {
		t.Errorf("∫F′ over a turn = %v, want 2π", got)
	}
}

func TestCircularSplineExtremes(t *testing.T) {
	tr := CircularSpline(4)
	for _, v := range []float64{0, 1e3, -1e3, 1e300, -1e300, math.MaxFloat64} {
		th := make([]float64, tr.Params)
		for i := range th {
			th[i] = v * float64(1-2*(i%2))
		}
		for _, x := range []float64{0, math.Pi, -math.Pi, 1e3, -1e15, 1e300, 5e-324} {
			circCheckPoint(t, tr, th, x)
		}
	}
}

// circCheckPoint checks tr at x: no NaN, finite values and gradients
// where the rotation and x are finite and below 1e300, and the round trip
// modulo 2π where |x|, |φ| ≤ 1e6, to the rounding of the output (ulps of
// max(|x|, |y|), through the decomposition x = 2πn + r and the rotation)
// turned into an error in x by the inverse slope e^{−ld}.
func circCheckPoint(t *testing.T, tr Transformer, th []float64, x float64) {
	t.Helper()
	y, ld := tr.Forward(th, x)
	xi, ldi := tr.Inverse(th, x)
	dth, dthi := make([]float64, len(th)), make([]float64, len(th))
	dx := tr.ForwardVJP(th, x, y, 1, 0.5, dth)
	dy := tr.InverseVJP(th, x, xi, -1, 2, dthi)
	phi := th[len(th)-1]
	for _, v := range append(append([]float64{y, ld, xi, ldi, dx, dy}, dth...), dthi...) {
		if math.IsNaN(v) || (!lmcFinite(v) && math.Abs(x) < 1e300 && math.Abs(phi) < 1e300) {
			t.Fatalf("θ=%v x=%v: y=%v ld=%v x'=%v ld'=%v dx=%v dy=%v dθ=%v dθ'=%v", th, x, y, ld, xi, ldi, dx, dy, dth, dthi)
		}
	}
	if math.Abs(x) <= 1e6 && math.Abs(phi) <= 1e6 {
		xb, _ := tr.Inverse(th, y)
		if d := math.Abs(circWrap(xb - x)); d > 16*0x1p-52*max(1, math.Abs(x), math.Abs(y))*(1+math.Exp(-ld)) {
			t.Fatalf("θ=%v: round trip %v → %v → %v", th, x, y, xb)
		}
	}
}

// FuzzCircularSpline fuzzes CircularSpline(3) (10 parameters) at x, θ
// decoded from raw as little-endian float64s read as the layers read them.
func FuzzCircularSpline(f *testing.F) {
	tr := CircularSpline(3)
	f.Add(0.0, []byte{})
	f.Add(math.Pi, lmcEncodeTheta(1, -2, 3, -4, 5, -6, 7, -8, 1e3, 0.5))
	f.Add(-math.Pi, lmcEncodeTheta(30, -30, 30, -30, 30, -30, 1e3, -1e3, -1e3, 1e6))
	f.Add(1e15, lmcEncodeTheta(math.MaxFloat64, -math.MaxFloat64, 0, 1e300))
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
		circCheckPoint(t, tr, th, x)
	})
}

// TestCircularCouplingPeriodic checks that the mixed layer reads its
// conditioning angles on the circle: shifting them by 2π changes nothing,
// and shifting a transformed angle by 2π shifts its output by 2π.
func TestCircularCouplingPeriodic(t *testing.T) {
	p, bj, err := CircularCoupling(MLP([]int{8}, Tanh), CircularConfig{Angles: []int{0, 2}, Bins: 5})(NewKey(3), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := NewKey(4).Rand()
	for i := range p {
		p[i] += 0.3 * rng.NormFloat64()
	}
	x := mat.NewDense(3, 4, []float64{0.3, -1, 2, 0.5, -2.9, 0.2, -0.4, 1.5, 3, 3, -3, -3})
	z, ld := bj.Direct(p, x, nil)
	xs := mat.DenseCopyOf(x)
	for i := range 3 {
		xs.Set(i, 0, x.At(i, 0)+2*math.Pi) // a conditioning angle
		xs.Set(i, 2, x.At(i, 2)-4*math.Pi) // a transformed angle
		xs.Set(i, 1, x.At(i, 1))           // a conditioning real
		xs.Set(i, 3, x.At(i, 3))           // a transformed real
	}
	zs, lds := bj.Direct(p, xs, nil)
	for i := range 3 {
		if math.Abs(zs.At(i, 2)-z.At(i, 2)+4*math.Pi) > 1e-12 || math.Abs(zs.At(i, 3)-z.At(i, 3)) > 1e-12 || math.Abs(lds[i]-ld[i]) > 1e-9 {
			t.Fatalf("row %d: z = %v, log-det %v; shifted by 2π: z = %v, log-det %v", i, mat.Row(nil, i, z), ld[i], mat.Row(nil, i, zs), lds[i])
		}
	}
}

func TestCircularCouplingErrors(t *testing.T) {
	for _, c := range []struct {
		cfg CircularConfig
		dim int
	}{
		{CircularConfig{Angles: []int{3}}, 3},
		{CircularConfig{Angles: []int{-1}}, 3},
		{CircularConfig{Angles: []int{1, 1}}, 3},
		{CircularConfig{Bins: 1}, 3},
		{CircularConfig{Bound: -1}, 3},
		{CircularConfig{}, 1},
	} {
		if _, _, err := CircularCoupling(MLP([]int{4}, Tanh), c.cfg)(NewKey(1), c.dim, 0); err == nil || err.Error()[:24] != "flows: CircularCoupling:" {
			t.Errorf("%+v at dim %d: err = %v, want a CircularCoupling error", c.cfg, c.dim, err)
		}
	}
}
