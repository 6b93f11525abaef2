package flows_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

// unitInputs draws entries uniformly from (0.05, 0.95), inside Logit's
// domain and away from its clipping.
func unitInputs(key flows.Key, n, dim int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, 0.05+0.9*rng.Float64())
		}
	}
	return x
}

func TestSigmoidLogitConformance(t *testing.T) {
	for _, dim := range []int{1, 3} {
		for _, c := range []flowstest.Bijection{
			{Name: fmt.Sprintf("Sigmoid/dim=%d", dim), Init: flows.Sigmoid(), Dim: dim},
			{Name: fmt.Sprintf("Logit/dim=%d", dim), Init: flows.Logit(), Dim: dim, Inputs: unitInputs},
			{Name: fmt.Sprintf("Invert(Logit)/dim=%d", dim), Init: flows.Invert(flows.Logit()), Dim: dim},
			{Name: fmt.Sprintf("Invert(Sigmoid)/dim=%d", dim), Init: flows.Invert(flows.Sigmoid()), Dim: dim, Inputs: unitInputs},
		} {
			flowstest.TestBijection(t, c)
		}
	}
}

func TestSigmoidLogitBadDim(t *testing.T) {
	for _, init := range []flows.InitFunc{flows.Sigmoid(), flows.Logit()} {
		if _, _, err := init(flows.NewKey(1), 0, 0); err == nil {
			t.Error("dim 0: no error")
		}
	}
}

// elemPass runs DirectVJP on a one-column batch and returns z, the log-det,
// and the pullbacks of Σz and Σ logDet with respect to x.
func elemPass(t *testing.T, init flows.InitFunc, inverse bool, xs []float64) (z, ld, dz, dld []float64) {
	t.Helper()
	p, bj, err := init(flows.NewKey(1), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := len(xs)
	x := mat.NewDense(n, 1, append([]float64(nil), xs...))
	vjp := bj.DirectVJP
	if inverse {
		vjp = bj.InverseVJP
	}
	zm, ld, back := vjp(p, x, nil)
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	dzm := back(mat.NewDense(n, 1, ones), make([]float64, n), flows.Params{}, nil)
	dldm := back(mat.NewDense(n, 1, nil), ones, flows.Params{}, nil)
	return mat.Col(nil, 0, zm), ld, mat.Col(nil, 0, dzm), mat.Col(nil, 0, dldm)
}

// TestLogitClipping checks Logit at and beyond the ends of its domain:
// finite results equal to those at the clipped point δ or 1 − δ, and zero
// gradient to the clipped input; NaN passes through.
func TestLogitClipping(t *testing.T) {
	const d = flows.LogitClip
	lo := math.Log(d) - math.Log1p(-d) // logit(δ) ≈ −27.726
	ldAt := -math.Log(d) - math.Log1p(-d)
	in := []float64{-1, 0, 1, 2, math.Inf(-1), math.Inf(1), d / 2, 1 - d/2}
	want := []float64{lo, lo, -lo, -lo, lo, -lo, lo, -lo}
	z, ld, dz, dld := elemPass(t, flows.Logit(), false, in)
	for i, u := range in {
		if z[i] != want[i] {
			t.Errorf("Logit(%v) = %v, want %v", u, z[i], want[i])
		}
		// The log-det is symmetric: −log δ − log(1−δ) at either end.
		if math.Abs(ld[i]-ldAt) > 1e-14*ldAt {
			t.Errorf("Logit log-det at %v = %v, want %v", u, ld[i], ldAt)
		}
		if dz[i] != 0 || dld[i] != 0 {
			t.Errorf("Logit at clipped %v: gradients %v, %v, want 0, 0", u, dz[i], dld[i])
		}
	}
	if math.Abs(lo+27.725887222396903) > 1e-12 {
		t.Errorf("logit(δ) = %v, documented as about −27.726", lo)
	}
	// At δ itself the input is not clipped and the gradient is the
	// derivative's value there.
	_, _, dz, _ = elemPass(t, flows.Logit(), false, []float64{d})
	if want := 1 / (d * (1 - d)); math.Abs(dz[0]-want) > 1e-12*want {
		t.Errorf("Logit′(δ) = %v, want %v", dz[0], want)
	}
	z, ld, _, _ = elemPass(t, flows.Logit(), false, []float64{math.NaN()})
	if !math.IsNaN(z[0]) || !math.IsNaN(ld[0]) {
		t.Errorf("Logit(NaN) = %v (log-det %v), want NaN to pass through", z[0], ld[0])
	}
}

// TestSigmoidExtremes checks the exact log-det of Sigmoid far out, where
// the naive log σ(x)(1 − σ(x)) is log 0, the clipping of its output, and
// that the inverse of the clipped output is finite.
func TestSigmoidExtremes(t *testing.T) {
	const d = flows.LogitClip
	xs := []float64{-1000, -40, -20, 20, 40, 1000}
	z, ld, dz, dld := elemPass(t, flows.Sigmoid(), false, xs)
	for i, x := range xs {
		// log σ(x)σ(−x) = −|x| − 2·log1p(e^{−|x|}) in closed form.
		want := -math.Abs(x) - 2*math.Log1p(math.Exp(-math.Abs(x)))
		if math.Abs(ld[i]-want) > 1e-15*math.Abs(want) {
			t.Errorf("Sigmoid log-det at %v = %.17g, want %.17g", x, ld[i], want)
		}
		// d/dx log σ(x)σ(−x) = σ(−x) − σ(x) = −tanh(x/2).
		if w := -math.Tanh(x / 2); math.Abs(dld[i]-w) > 1e-15 {
			t.Errorf("Sigmoid log-det gradient at %v = %v, want %v", x, dld[i], w)
		}
		// σ(x) and σ(−x), each to full relative accuracy.
		s, c := 1/(1+math.Exp(-x)), 1/(1+math.Exp(x))
		switch {
		case math.Abs(x) > 27.73: // clipped: σ(x) ∉ [δ, 1 − δ]
			wz := d
			if x > 0 {
				wz = 1 - d
			}
			if z[i] != wz || dz[i] != 0 {
				t.Errorf("Sigmoid(%v) = %v with gradient %v, want clipped to %v with gradient 0", x, z[i], dz[i], wz)
			}
		default:
			if math.Abs(z[i]-s) > 1e-15*s || math.Abs(dz[i]-s*c) > 1e-15*s*c {
				t.Errorf("Sigmoid(%v) = %v with gradient %v, want %v with %v", x, z[i], dz[i], s, s*c)
			}
		}
	}
	// The inverse of every output is finite.
	back, ild, _, _ := elemPass(t, flows.Sigmoid(), true, z)
	for i := range back {
		if math.IsNaN(back[i]) || math.IsInf(back[i], 0) || math.IsNaN(ild[i]) || math.IsInf(ild[i], 0) {
			t.Errorf("Sigmoid inverse of %v = %v (log-det %v), want finite", z[i], back[i], ild[i])
		}
	}
}

// TestLogitExtremes checks Logit's log-det, −log u − log(1 − u), against the
// closed form near both ends of its (unclipped) domain, and that Logit and
// Sigmoid's inverse are the same map.
func TestLogitExtremes(t *testing.T) {
	us := []float64{1e-11, 1e-6, 0.5, 1 - 1e-6, 1 - 1e-11}
	z, ld, dz, _ := elemPass(t, flows.Logit(), false, us)
	zi, ldi, _, _ := elemPass(t, flows.Sigmoid(), true, us)
	for i, u := range us {
		// For u ≥ ½, 1 − u is exact (Sterbenz), so these are good to ulps.
		want := -math.Log(u) - math.Log(1-u)
		if math.Abs(ld[i]-want) > 1e-14*math.Abs(want) {
			t.Errorf("Logit log-det at %v = %.17g, want %.17g", u, ld[i], want)
		}
		if wz := math.Log(u) - math.Log(1-u); math.Abs(z[i]-wz) > 1e-14*math.Max(1, math.Abs(wz)) {
			t.Errorf("Logit(%v) = %.17g, want %.17g", u, z[i], wz)
		}
		if wd := 1 / (u * (1 - u)); math.Abs(dz[i]-wd) > 1e-14*wd {
			t.Errorf("Logit′(%v) = %v, want %v", u, dz[i], wd)
		}
		if z[i] != zi[i] || ld[i] != ldi[i] {
			t.Errorf("at %v Logit gives (%v, %v) but Sigmoid's inverse (%v, %v)", u, z[i], ld[i], zi[i], ldi[i])
		}
	}
	// Logit's inverse at ±40 is Sigmoid there: log-det exact too.
	_, ld, _, _ = elemPass(t, flows.Logit(), true, []float64{-40, 40})
	for i, want := range []float64{-40 - 2*math.Log1p(math.Exp(-40)), -40 - 2*math.Log1p(math.Exp(-40))} {
		if math.Abs(ld[i]-want) > 1e-15*40 {
			t.Errorf("Logit inverse log-det at ±40 = %.17g, want %.17g", ld[i], want)
		}
	}
}

// TestSigmoidLogitRoundTrip checks Logit(Sigmoid(x)) = x over the range
// where float64 can hold σ(x) well: the rounding of σ(x) near 1 (about
// 1.1e-16 absolute) is magnified by 1/(σ(1 − σ)) ≈ e^{|x|}, so the error
// bound grows as 2.3e-16·e^{|x|} (2e-9 at |x| = 16); beyond the clip the
// round trip returns ±logit(1 − δ).
func TestSigmoidLogitRoundTrip(t *testing.T) {
	xs := []float64{-30, -25, -16, -5, -1, 0, 1e-300, 1, 5, 16, 25, 30}
	z, _, _, _ := elemPass(t, flows.Sigmoid(), false, xs)
	back, _, _, _ := elemPass(t, flows.Logit(), false, z)
	const clipX = 27.725887222396903 // log((1 − δ)/δ)
	for i, x := range xs {
		want := math.Max(-clipX, math.Min(clipX, x))
		tol := 4e-16*math.Exp(math.Abs(want)) + 1e-15*math.Abs(want)
		if math.Abs(back[i]-want) > tol {
			t.Errorf("Logit(Sigmoid(%v)) = %.17g, want %.17g within %g", x, back[i], want, tol)
		}
	}
}
