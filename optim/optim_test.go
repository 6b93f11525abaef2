package optim_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// ---------------------------------------------------------------- Adam

// TestAdamHandValues checks two Adam steps against values worked out from
// Algorithm 1 of Kingma & Ba in 50-digit decimal arithmetic, outside this
// package's code. With LR 0.1 and the default betas and Eps:
//
//	step 1, g = (0.5, −4, 0):
//	  m = (0.05, −0.4, 0), v = (0.00025, 0.016, 0), 1−β₁ = 0.1, 1−β₂ = 0.001
//	  m̂ = (0.5, −4, 0), √v̂ = (0.5, 4, 0)
//	  p = (1 − 0.1·0.5/(0.5+1e-8), −2 + 0.1·4/(4+1e-8), 0.5 − 0)
//	    = (0.900000001999999960…, −1.900000000249999999…, 0.5)
//	step 2, g = (1.5, 2, −0.25):
//	  m = (0.195, −0.16, −0.025), v = (0.00249975, 0.019984, 0.0000625)
//	  1−β₁² = 0.19, 1−β₂² = 0.001999
//	  p = (0.808221890922693681…, −1.873366296368195550…, 0.574413678148277919…)
func TestAdamHandValues(t *testing.T) {
	a := optim.NewAdam(3)
	a.LR = 0.1
	p := []float64{1, -2, 0.5}

	a.Step(p, []float64{0.5, -4, 0})
	want1 := []float64{0.900000001999999960, -1.900000000249999999, 0.5}
	checkClose(t, "after step 1", p, want1, 4e-15)
	if a.Steps() != 1 {
		t.Errorf("Steps() = %d after one step, want 1", a.Steps())
	}

	a.Step(p, []float64{1.5, 2, -0.25})
	want2 := []float64{0.808221890922693681, -1.873366296368195550, 0.574413678148277919}
	checkClose(t, "after step 2", p, want2, 4e-15)
	if a.Steps() != 2 {
		t.Errorf("Steps() = %d after two steps, want 2", a.Steps())
	}
}

// TestAdamBiasCorrection checks that the first step moves every coordinate
// by LR·sign(g) whatever the gradient's scale: without the bias corrections
// it would move by LR·(1−β₁)/√(1−β₂) ≈ 3.16·LR. The only departure from
// LR·sign(g) is the factor |g|/(|g|+Eps), at most 1e-5 for |g| ≥ 1e-3.
func TestAdamBiasCorrection(t *testing.T) {
	a := optim.NewAdam(4)
	p := []float64{0, 0, 0, 0}
	g := []float64{1e-3, -5, 200, -1e6}
	a.Step(p, g)
	for i := range p {
		want := -a.LR * math.Copysign(1, g[i])
		if math.Abs(p[i]-want) > 1e-5*a.LR {
			t.Errorf("coordinate %d moved by %g, want %g", i, p[i], want)
		}
	}
}

// TestAdamStepLR checks that StepLR uses its rate rather than LR, and that
// Reset starts the optimiser afresh.
func TestAdamStepLR(t *testing.T) {
	a := optim.NewAdam(2)
	p := []float64{0, 0}
	g := []float64{3, -3}
	a.StepLR(p, g, 0.5)
	checkClose(t, "StepLR", p, []float64{-0.5, 0.5}, 1e-8)

	a.Step(p, []float64{100, 100})
	a.Reset()
	if a.Steps() != 0 {
		t.Fatalf("Steps() = %d after Reset, want 0", a.Steps())
	}
	q := []float64{0, 0}
	a.StepLR(q, g, 0.5)
	checkClose(t, "first step after Reset", q, []float64{-0.5, 0.5}, 1e-8)
}

// TestAdamQuadratic minimises the convex quadratic
// f(p) = ½ Σ aᵢ (pᵢ − cᵢ)² with curvatures spanning six orders of
// magnitude, from a start far from the minimum.
func TestAdamQuadratic(t *testing.T) {
	curv := []float64{1e-3, 1, 10, 1e3}
	c := []float64{3, -1, 0.25, 2}
	p := []float64{-5, 4, 10, -3}
	grad := make([]float64, len(p))
	f := func() float64 {
		var s float64
		for i := range p {
			d := p[i] - c[i]
			s += curv[i] * d * d / 2
		}
		return s
	}
	f0 := f()
	a := optim.NewAdam(len(p))
	sched := optim.Cosine(0.1, 1e-4)
	const total = 3000
	for range total {
		for i := range p {
			grad[i] = curv[i] * (p[i] - c[i])
		}
		a.StepLR(p, grad, sched(a.Steps(), total))
	}
	if f1 := f(); f1 > 1e-8*f0 {
		t.Errorf("f went from %g to %g, want a reduction by 1e8", f0, f1)
	}
	for i := range p {
		if math.Abs(p[i]-c[i]) > 1e-3 {
			t.Errorf("p[%d] = %g, want %g", i, p[i], c[i])
		}
	}
}

func TestAdamPanics(t *testing.T) {
	a := optim.NewAdam(3)
	mustPanic(t, "short p", func() { a.Step(make([]float64, 2), make([]float64, 3)) })
	mustPanic(t, "long grad", func() { a.Step(make([]float64, 3), make([]float64, 4)) })
	mustPanic(t, "negative n", func() { optim.NewAdam(-1) })
	b := optim.NewAdam(1)
	b.Beta2 = 1
	mustPanic(t, "Beta2 = 1", func() { b.Step([]float64{0}, []float64{1}) })
}

func TestAdamStepDoesNotAllocate(t *testing.T) {
	a := optim.NewAdam(1000)
	p := make([]float64, 1000)
	g := make([]float64, 1000)
	for i := range g {
		g[i] = float64(i%7) - 3
	}
	if n := testing.AllocsPerRun(10, func() { a.Step(p, g) }); n != 0 {
		t.Errorf("Step allocates %v times per call, want 0", n)
	}
}

// ---------------------------------------------------------------- ClipGlobalNorm

func TestClipGlobalNorm(t *testing.T) {
	t.Run("below max", func(t *testing.T) {
		g := []float64{3, -4}
		if n := optim.ClipGlobalNorm(g, 10); n != 5 {
			t.Errorf("norm = %g, want 5", n)
		}
		checkClose(t, "grad", g, []float64{3, -4}, 0)
	})
	t.Run("above max", func(t *testing.T) {
		g := []float64{3, -4}
		if n := optim.ClipGlobalNorm(g, 1); n != 5 {
			t.Errorf("norm = %g, want 5", n)
		}
		checkClose(t, "grad", g, []float64{0.6, -0.8}, 1e-15)
		if n := math.Hypot(g[0], g[1]); math.Abs(n-1) > 4.5e-16 {
			t.Errorf("norm after clipping = %.17g, want 1", n)
		}
	})
	t.Run("zero vector", func(t *testing.T) {
		g := []float64{0, 0, 0}
		if n := optim.ClipGlobalNorm(g, 1); n != 0 {
			t.Errorf("norm = %g, want 0", n)
		}
		checkClose(t, "grad", g, []float64{0, 0, 0}, 0)
		if n := optim.ClipGlobalNorm(nil, 1); n != 0 {
			t.Errorf("norm of nil = %g, want 0", n)
		}
	})
	t.Run("no overflow", func(t *testing.T) {
		g := []float64{1e200, -1e200, 1e200}
		n := optim.ClipGlobalNorm(g, 1)
		if want := math.Sqrt(3) * 1e200; math.Abs(n-want) > 1e-15*want {
			t.Errorf("norm = %g, want %g", n, want)
		}
		s := 1 / math.Sqrt(3)
		checkClose(t, "grad", g, []float64{s, -s, s}, 1e-15)
	})
	t.Run("no clipping", func(t *testing.T) {
		for _, max := range []float64{0, -1, math.Inf(1)} {
			g := []float64{30, 40}
			if n := optim.ClipGlobalNorm(g, max); n != 50 {
				t.Errorf("maxNorm %g: norm = %g, want 50", max, n)
			}
			checkClose(t, "grad", g, []float64{30, 40}, 0)
		}
	})
	t.Run("non-finite", func(t *testing.T) {
		g := []float64{1, math.Inf(-1)}
		if n := optim.ClipGlobalNorm(g, 1); !math.IsInf(n, 1) {
			t.Errorf("norm = %g, want +Inf", n)
		}
		g = []float64{1, math.NaN()}
		if n := optim.ClipGlobalNorm(g, 1); !math.IsNaN(n) {
			t.Errorf("norm = %g, want NaN", n)
		}
		if g[0] != 1 {
			t.Errorf("grad changed to %v", g)
		}
		mustPanic(t, "NaN maxNorm", func() { optim.ClipGlobalNorm(g, math.NaN()) })
	})
}

// ---------------------------------------------------------------- Schedules

func TestSchedules(t *testing.T) {
	const total = 100
	tests := []struct {
		name  string
		s     optim.Schedule
		steps []int
		want  []float64
	}{
		{"Constant", optim.Constant(0.3), []int{0, 50, 100, 1000}, []float64{0.3, 0.3, 0.3, 0.3}},
		// cos(π/4) = √2/2, so at a quarter: 0.1 + 0.9·(1+√2/2)/2.
		{"Cosine", optim.Cosine(1, 0.1), []int{-5, 0, 25, 50, 100, 150},
			[]float64{1, 1, 0.1 + 0.9*(1+math.Sqrt2/2)/2, 0.55, 0.1, 0.1}},
		// Warmup 1/10, 2/10, ..., reaching 1 at step 9; then the cosine over
		// steps 10..100, half way at step 55.
		{"WarmupCosine", optim.WarmupCosine(1, 0, 10), []int{0, 4, 9, 10, 55, 100, 200},
			[]float64{0.1, 0.5, 1, 1, 0.5, 0, 0}},
		{"WarmupCosine no warmup", optim.WarmupCosine(2, 0, 0), []int{0, 50, 100},
			[]float64{2, 1, 0}},
	}
	for _, tc := range tests {
		for i, step := range tc.steps {
			if got := tc.s(step, total); math.Abs(got-tc.want[i]) > 1e-15 {
				t.Errorf("%s(%d, %d) = %.17g, want %.17g", tc.name, step, total, got, tc.want[i])
			}
		}
	}
	mustPanic(t, "negative warmup", func() { optim.WarmupCosine(1, 0, -1) })
}

// ---------------------------------------------------------------- NLL

// gauss1D is a 1-D Gaussian with parameters p = (μ, log σ), written out with
// its analytic gradients:
//
//	log p(x) = −½((x−μ)/σ)² − log σ − ½ log 2π
//	∂/∂μ     = (x−μ)/σ²
//	∂/∂log σ = ((x−μ)/σ)² − 1
//	∂/∂x     = −(x−μ)/σ²
func gauss1D() flows.Distribution {
	logPDF := func(p flows.Params, x, c *mat.Dense) []float64 {
		n, _ := x.Dims()
		mu, sigma := p[0], math.Exp(p[1])
		out := make([]float64, n)
		for i := range out {
			z := (x.At(i, 0) - mu) / sigma
			out[i] = -z*z/2 - p[1] - math.Log(2*math.Pi)/2
		}
		return out
	}
	return flows.Distribution{
		LogPDF: logPDF,
		LogPDFVJP: func(p flows.Params, x, _ *mat.Dense) ([]float64, flows.DistPullback) {
			logp := logPDF(p, x, nil)
			n, _ := x.Dims()
			mu, sigma := p[0], math.Exp(p[1])
			back := func(dLogp []float64, dp flows.Params, _ *mat.Dense) *mat.Dense {
				dx := mat.NewDense(n, 1, nil)
				for i := range n {
					z := (x.At(i, 0) - mu) / sigma
					dp[0] += dLogp[i] * z / sigma
					dp[1] += dLogp[i] * (z*z - 1)
					dx.Set(i, 0, -dLogp[i]*z/sigma)
				}
				return dx
			}
			return logp, back
		},
	}
}

var nllData = []float64{0.3, -1.2, 2.5, 0.9, 1.1, -0.4, 3.0}

// TestNLLGaussian checks NLL's loss against the closed form
// ½(s² + (x̄−μ)²)/σ² + log σ + ½ log 2π (s² the population variance of the
// data), its gradient against the closed form and against central finite
// differences of NLLValue, and that grad is overwritten, not added to.
func TestNLLGaussian(t *testing.T) {
	d := gauss1D()
	x := mat.NewDense(len(nllData), 1, append([]float64(nil), nllData...))
	p := flows.Params{0.4, -0.3}

	var mean, m2 float64
	for _, v := range nllData {
		mean += v
	}
	mean /= float64(len(nllData))
	for _, v := range nllData {
		m2 += (v - mean) * (v - mean)
	}
	s2 := m2 / float64(len(nllData))
	sigma2 := math.Exp(2 * p[1])
	wantLoss := (s2+(mean-p[0])*(mean-p[0]))/(2*sigma2) + p[1] + math.Log(2*math.Pi)/2
	wantGrad := []float64{
		-(mean - p[0]) / sigma2,
		-(s2+(mean-p[0])*(mean-p[0]))/sigma2 + 1,
	}

	grad := flows.Params{1e9, -1e9} // garbage that must be overwritten
	loss, err := optim.NLL(d, p, x, nil, grad)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-wantLoss) > 1e-13 {
		t.Errorf("loss = %.17g, want %.17g", loss, wantLoss)
	}
	checkClose(t, "analytic gradient", grad, wantGrad, 1e-13)
	if v, err := optim.NLLValue(d, p, x, nil); err != nil || v != loss {
		t.Errorf("NLLValue = %.17g, %v; want NLL's %.17g", v, err, loss)
	}

	// Central differences have truncation error O(h²·f''') ≈ 1e-12 and
	// rounding error O(ε·|f|/h) ≈ 1e-10 at h = 1e-6, so 1e-7 leaves a wide
	// margin while still catching any wrong factor or sign.
	const h = 1e-6
	for k := range p {
		q := append(flows.Params(nil), p...)
		q[k] = p[k] + h
		up, _ := optim.NLLValue(d, q, x, nil)
		q[k] = p[k] - h
		down, _ := optim.NLLValue(d, q, x, nil)
		if fd := (up - down) / (2 * h); math.Abs(fd-grad[k]) > 1e-7 {
			t.Errorf("∂loss/∂p[%d] = %.12g, finite difference %.12g", k, grad[k], fd)
		}
	}

	// A second call with the same buffer gives the same gradient, not twice it.
	again := append(flows.Params(nil), grad...)
	if _, err := optim.NLL(d, p, x, nil, again); err != nil {
		t.Fatal(err)
	}
	checkClose(t, "gradient of a second call", again, grad, 0)
}

// untouchable is a Distribution whose every method fails the test: NLL must
// reject bad batches before calling it.
func untouchable(t *testing.T) flows.Distribution {
	return flows.Distribution{
		LogPDF: func(flows.Params, *mat.Dense, *mat.Dense) []float64 {
			t.Fatal("LogPDF called on a bad batch")
			return nil
		},
		LogPDFVJP: func(flows.Params, *mat.Dense, *mat.Dense) ([]float64, flows.DistPullback) {
			t.Fatal("LogPDFVJP called on a bad batch")
			return nil, nil
		},
	}
}

func TestNLLNonFiniteBatch(t *testing.T) {
	tests := []struct {
		name     string
		row, col int
		val      float64
		want     string
	}{
		{"NaN", 17, 2, math.NaN(), "optim: row 17, column 2 of the batch is NaN"},
		{"+Inf", 3, 0, math.Inf(1), "optim: row 3, column 0 of the batch is +Inf"},
		{"-Inf", 0, 1, math.Inf(-1), "optim: row 0, column 1 of the batch is -Inf"},
	}
	for _, tc := range tests {
		x := mat.NewDense(20, 3, nil)
		x.Set(tc.row, tc.col, tc.val)
		x.Set(19, 2, math.NaN()) // a later bad entry must not be the one named
		grad := flows.Params{7, 7}
		_, err := optim.NLL(untouchable(t), flows.Params{0, 0}, x, nil, grad)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: NLL error = %v, want %q", tc.name, err, tc.want)
		}
		if grad[0] != 7 || grad[1] != 7 {
			t.Errorf("%s: grad changed to %v on a rejected batch", tc.name, grad)
		}
		if _, err := optim.NLLValue(untouchable(t), flows.Params{0, 0}, x, nil); err == nil || err.Error() != tc.want {
			t.Errorf("%s: NLLValue error = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestNLLView checks that the finiteness scan respects a view's stride: a
// NaN outside the view is not part of the batch.
func TestNLLView(t *testing.T) {
	big := mat.NewDense(4, 3, nil)
	for i := range 4 {
		big.Set(i, 0, nllData[i])
		big.Set(i, 1, math.NaN())
	}
	x := big.Slice(0, 4, 0, 1).(*mat.Dense)
	grad := make(flows.Params, 2)
	if _, err := optim.NLL(gauss1D(), flows.Params{0, 0}, x, nil, grad); err != nil {
		t.Errorf("NLL on a 4×1 view: %v", err)
	}
	y := big.Slice(1, 3, 1, 2).(*mat.Dense)
	want := "optim: row 0, column 0 of the batch is NaN"
	if _, err := optim.NLL(untouchable(t), flows.Params{0, 0}, y, nil, grad); err == nil || err.Error() != want {
		t.Errorf("NLL on a view of NaNs: error %v, want %q", err, want)
	}
}

// TestNLLNonFiniteLoss checks that a log density of −Inf (data outside the
// support) or NaN is an error naming the row, and that grad is then zeroed.
func TestNLLNonFiniteLoss(t *testing.T) {
	base := gauss1D()
	breakRows := func(bad map[int]float64) flows.Distribution {
		d := base
		d.LogPDF = func(p flows.Params, x, c *mat.Dense) []float64 {
			logp := base.LogPDF(p, x, nil)
			for i, v := range bad {
				logp[i] = v
			}
			return logp
		}
		d.LogPDFVJP = func(p flows.Params, x, _ *mat.Dense) ([]float64, flows.DistPullback) {
			logp, back := base.LogPDFVJP(p, x, nil)
			for i, v := range bad {
				logp[i] = v
			}
			return logp, back
		}
		return d
	}
	x := mat.NewDense(len(nllData), 1, append([]float64(nil), nllData...))
	p := flows.Params{0, 0}

	d := breakRows(map[int]float64{2: math.Inf(-1), 5: math.NaN()})
	grad := flows.Params{3, 4}
	loss, err := optim.NLL(d, p, x, nil, grad)
	want := "optim: log density of row 2 of the batch is -Inf"
	if err == nil || err.Error() != want {
		t.Errorf("NLL error = %v, want %q", err, want)
	}
	if !math.IsNaN(loss) {
		t.Errorf("loss = %g, want NaN (−Inf plus NaN)", loss)
	}
	if grad[0] != 0 || grad[1] != 0 {
		t.Errorf("grad = %v after a non-finite loss, want zeros", grad)
	}
	if _, err := optim.NLLValue(d, p, x, nil); err == nil || err.Error() != want {
		t.Errorf("NLLValue error = %v, want %q", err, want)
	}

	d = breakRows(map[int]float64{4: math.Inf(-1)})
	loss, err = optim.NLL(d, p, x, nil, grad)
	if err == nil || !strings.Contains(err.Error(), "row 4") || !math.IsInf(loss, 1) {
		t.Errorf("NLL = %g, %v; want +Inf and an error naming row 4", loss, err)
	}
}

// TestNLLHugeFiniteLogDensities checks that log densities that are each
// finite but whose sum overflows still give a finite mean.
func TestNLLHugeFiniteLogDensities(t *testing.T) {
	d := flows.Distribution{
		LogPDF: func(_ flows.Params, x, _ *mat.Dense) []float64 {
			n, _ := x.Dims()
			out := make([]float64, n)
			for i := range out {
				out[i] = -math.MaxFloat64
			}
			return out
		},
	}
	x := mat.NewDense(4, 1, nil)
	loss, err := optim.NLLValue(d, nil, x, nil)
	if err != nil || loss != math.MaxFloat64 {
		t.Errorf("NLLValue = %g, %v; want MaxFloat64, nil", loss, err)
	}
}

func TestNLLPanics(t *testing.T) {
	d := gauss1D()
	x := mat.NewDense(2, 1, []float64{1, 2})
	mustPanic(t, "nil batch", func() { optim.NLL(d, flows.Params{0, 0}, nil, nil, make(flows.Params, 2)) })
	mustPanic(t, "empty batch", func() { optim.NLL(d, flows.Params{0, 0}, &mat.Dense{}, nil, make(flows.Params, 2)) })
	mustPanic(t, "short grad", func() { optim.NLL(d, flows.Params{0, 0}, x, nil, make(flows.Params, 1)) })
	mustPanic(t, "NLLValue nil batch", func() { optim.NLLValue(d, flows.Params{0, 0}, nil, nil) })
	mustPanic(t, "NLLValue empty batch", func() { optim.NLLValue(d, flows.Params{0, 0}, &mat.Dense{}, nil) })
}

// ---------------------------------------------------------------- helpers

func checkClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol || math.IsNaN(got[i]) {
			t.Errorf("%s: [%d] = %.17g, want %.17g (tolerance %g)", what, i, got[i], want[i], tol)
		}
	}
}

// mustPanic fails the test unless f panics with a string starting "optim:".
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", what)
			return
		}
		if s, ok := r.(string); !ok || !strings.HasPrefix(s, "optim: ") {
			t.Errorf("%s: panic value %#v, want a string starting \"optim: \"", what, r)
		}
	}()
	f()
}

// ---------------------------------------------------------------- benchmarks

func BenchmarkAdamStep(b *testing.B) {
	const n = 100_000
	a := optim.NewAdam(n)
	p := make([]float64, n)
	g := make([]float64, n)
	for i := range g {
		g[i] = math.Sin(float64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Step(p, g)
	}
}

func BenchmarkClipGlobalNorm(b *testing.B) {
	const n = 100_000
	g := make([]float64, n)
	for i := range g {
		g[i] = math.Sin(float64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		optim.ClipGlobalNorm(g, math.Inf(1))
	}
}

// TestAdamSplitBits: a large Adam, whose update is split over the helper
// pool, moves every entry exactly as Adams over pieces of the vector small
// enough to run on the calling goroutine, on any GOMAXPROCS.
func TestAdamSplitBits(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const n, piece = 70001, 10000
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		rng := rand.New(rand.NewPCG(3, uint64(procs)))
		p := make([]float64, n)
		for i := range p {
			p[i] = rng.NormFloat64()
		}
		q := slices.Clone(p)
		big := optim.NewAdam(n)
		var small []*optim.Adam
		for i0 := 0; i0 < n; i0 += piece {
			small = append(small, optim.NewAdam(min(piece, n-i0)))
		}
		g := make([]float64, n)
		for range 3 {
			for i := range g {
				g[i] = rng.NormFloat64()
			}
			big.Step(p, g)
			for k, a := range small {
				i0 := k * piece
				a.Step(q[i0:i0+min(piece, n-i0)], g[i0:i0+min(piece, n-i0)])
			}
		}
		for i := range p {
			if math.Float64bits(p[i]) != math.Float64bits(q[i]) {
				t.Fatalf("GOMAXPROCS=%d: entry %d is %v split, %v in pieces", procs, i, p[i], q[i])
			}
		}
	}
}
