package optim_test

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// viBanana is a non-Gaussian target over 2-D rows,
//
//	log p̃(x) = −x₁²/8 − (x₂ − x₁²/2)²/2,
//
// with ∇ = (−x₁/4 + (x₂ − x₁²/2)·x₁, −(x₂ − x₁²/2)): curved, so that the
// gradient test exercises the target's gradient as well as the flow's.
func viBanana() optim.Target {
	return optim.Target{
		Dim: 2,
		LogDensity: func(x, _ *mat.Dense) []float64 {
			n, _ := x.Dims()
			lp := make([]float64, n)
			for i := range n {
				a, b := x.At(i, 0), x.At(i, 1)
				r := b - a*a/2
				lp[i] = -a*a/8 - r*r/2
			}
			return lp
		},
		Grad: func(x, _ *mat.Dense) *mat.Dense {
			n, _ := x.Dims()
			g := mat.NewDense(n, 2, nil)
			for i := range n {
				a, b := x.At(i, 0), x.At(i, 1)
				r := b - a*a/2
				g.Set(i, 0, -a/4+r*a)
				g.Set(i, 1, -r)
			}
			return g
		},
	}
}

// viGaussian is the unnormalised Gaussian target
// log p̃(x) = −½(x−μ)ᵀΣ⁻¹(x−μ), returned with its exact log Z =
// (d/2)·log 2π + ½·log det Σ.
func viGaussian(mu []float64, sigma *mat.SymDense) (optim.Target, float64) {
	d := len(mu)
	var chol mat.Cholesky
	if !chol.Factorize(sigma) {
		panic("viGaussian: Σ is not positive definite")
	}
	var prec mat.SymDense
	if err := chol.InverseTo(&prec); err != nil {
		panic(err)
	}
	// centred returns x − μ and (x − μ)·Σ⁻¹ (Σ⁻¹ is symmetric).
	centred := func(x *mat.Dense) (*mat.Dense, *mat.Dense) {
		n, _ := x.Dims()
		c := mat.NewDense(n, d, nil)
		for i := range n {
			for j := range d {
				c.Set(i, j, x.At(i, j)-mu[j])
			}
		}
		var cp mat.Dense
		cp.Mul(c, &prec)
		return c, &cp
	}
	t := optim.Target{
		Dim: d,
		LogDensity: func(x, _ *mat.Dense) []float64 {
			c, cp := centred(x)
			n, _ := x.Dims()
			lp := make([]float64, n)
			for i := range n {
				lp[i] = -0.5 * mat.Dot(c.RowView(i), cp.RowView(i))
			}
			return lp
		},
		Grad: func(x, _ *mat.Dense) *mat.Dense {
			_, cp := centred(x)
			cp.Scale(-1, cp)
			return cp
		},
	}
	logZ := float64(d)/2*math.Log(2*math.Pi) + 0.5*chol.LogDet()
	return t, logZ
}

// viFlow is a small flow with every kind of layer the energy example uses,
// with its parameters moved away from the identity initialisation so that
// every part of the pullback carries weight.
func viFlow(t *testing.T, perturb float64) (flows.Params, flows.Bijection) {
	t.Helper()
	p, b, err := flows.Serial(
		flows.AffineCoupling(flows.MLP([]int{4}, flows.Tanh)),
		flows.Reverse(),
		flows.AffineCoupling(flows.MLP([]int{4}, flows.Tanh)),
		flows.ActNorm(),
		flows.InvertibleLinear(),
	)(flows.NewKey(3), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(4).Rand()
	for i := range p {
		p[i] += perturb * (2*rng.Float64() - 1)
	}
	return p, b
}

// TestReverseKLGradient checks ReverseKL's gradient against central finite
// differences in every parameter. With the key fixed, the base samples z
// are fixed (same key → same z), so the estimate is a deterministic, smooth
// function of p and its finite differences are those of an ordinary
// function: no Monte Carlo noise enters the comparison.
//
// Tolerance: with step h = 1e-5 the central difference has truncation error
// about h²·|f‴|/6 ≈ 1e-10 and rounding error about ε·|f|/h ≈ 1e-10 for
// |f| of order 1–10, so 1e-6·(1 + |g|) leaves a wide margin while catching
// any missing or misweighted term (those are of order 1e-2 or more).
func TestReverseKLGradient(t *testing.T) {
	p, b := viFlow(t, 0.4)
	target := viBanana()
	key := flows.NewKey(11)
	const n = 16
	grad := make(flows.Params, len(p))
	kl, err := optim.ReverseKL(key, b, p, target, n, grad)
	if err != nil {
		t.Fatal(err)
	}
	// The estimate is deterministic for a fixed key.
	grad2 := make(flows.Params, len(p))
	kl2, _ := optim.ReverseKL(key, b, p, target, n, grad2)
	if kl2 != kl || !sameBits(grad, grad2) {
		t.Fatalf("ReverseKL is not deterministic for a fixed key: %v then %v", kl, kl2)
	}

	f := func(q flows.Params) float64 {
		v, err := optim.ReverseKL(key, b, q, target, n, make(flows.Params, len(q)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const h = 1e-5
	q := append(flows.Params(nil), p...)
	worst := 0.0
	for i := range p {
		q[i] = p[i] + h
		up := f(q)
		q[i] = p[i] - h
		down := f(q)
		q[i] = p[i]
		fd := (up - down) / (2 * h)
		e := math.Abs(fd-grad[i]) / (1 + math.Abs(grad[i]))
		worst = max(worst, e)
		if e > 1e-6 {
			t.Errorf("parameter %d: gradient %.10g, finite difference %.10g", i, grad[i], fd)
		}
	}
	t.Logf("%d parameters, KL estimate %.6f, worst relative error %.2g", len(p), kl, worst)
}

// TestReverseKLMatchesFlow checks that ReverseKL and ImportanceLogWeights
// use the samples and log density of flows.Flow(b, flows.Normal()): the
// same key gives the same x as the Flow's Sample, the log weights are
// log p̃ − LogPDF there, and the loss is −mean(logW).
func TestReverseKLMatchesFlow(t *testing.T) {
	p, b := viFlow(t, 0.4)
	target := viBanana()
	_, d, err := flows.Flow(func(flows.Key, int, int) (flows.Params, flows.Bijection, error) {
		return p, b, nil
	}, flows.Normal())(flows.NewKey(0), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	key := flows.NewKey(5)
	const n = 64
	x, logW := optim.ImportanceLogWeights(key, b, p, target, n)
	if !mat.Equal(x, d.Sample(key, p, n, nil)) {
		t.Fatal("ImportanceLogWeights' samples differ from the Flow's Sample with the same key")
	}
	logq := d.LogPDF(p, x, nil)
	logp := target.LogDensity(x, nil)
	sum := 0.0
	for i := range logW {
		if want := logp[i] - logq[i]; math.Abs(logW[i]-want) > 1e-9*(1+math.Abs(want)) {
			t.Errorf("sample %d: log weight %v, want log p̃ − log q = %v", i, logW[i], want)
		}
		sum += logW[i]
	}
	kl, err := optim.ReverseKL(key, b, p, target, n, make(flows.Params, len(p)))
	if err != nil {
		t.Fatal(err)
	}
	if want := -sum / n; math.Abs(kl-want) > 1e-12*(1+math.Abs(want)) {
		t.Errorf("ReverseKL = %v, −mean(logW) = %v", kl, want)
	}
}

// TestFitVIGaussian fits a correlated Gaussian, which the flow (ActNorm and
// InvertibleLinear give any affine map) can represent exactly, and checks
// on fresh samples that the KL divergence is near 0, the importance weights
// near uniform and the log Z estimate near the exact one.
func TestFitVIGaussian(t *testing.T) {
	sigma := mat.NewSymDense(2, []float64{2, 1.2, 1.2, 1})
	target, logZ := viGaussian([]float64{1, -0.5}, sigma)
	p, b, err := flows.Serial(
		flows.ActNorm(),
		flows.InvertibleLinear(),
		flows.AffineCoupling(flows.MLP([]int{8}, flows.Tanh)),
		flows.Reverse(),
		flows.AffineCoupling(flows.MLP([]int{8}, flows.Tanh)),
	)(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	const steps = 600
	calls := 0
	kls, err := optim.FitVI(flows.NewKey(2), b, p, target, optim.VIConfig{
		Steps:    steps,
		Samples:  128,
		Schedule: optim.Cosine(1e-2, 1e-4),
		Progress: func(step int, kl float64) {
			calls++
			if step != calls {
				t.Fatalf("Progress got step %d on call %d", step, calls)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(kls) != steps || calls != steps {
		t.Fatalf("%d losses and %d Progress calls, want %d", len(kls), calls, steps)
	}
	_, logW := optim.ImportanceLogWeights(flows.NewKey(99), b, p, target, 4096)
	elbo := 0.0
	for _, w := range logW {
		elbo += w / float64(len(logW))
	}
	kl := logZ - elbo // KL(q‖p) = E_q[log q − log p̃] + log Z
	ess := optim.ImportanceESS(logW)
	est := optim.LogMeanExp(logW)
	t.Logf("first loss %.4f, last %.4f; KL %.5f, ESS %.4f, log Z %.5f (exact %.5f)", kls[0], kls[steps-1], kl, ess, est, logZ)
	if !(kl < 0.01 && kl > -0.01) {
		t.Errorf("KL(q‖p) = %v after fitting, want ≈ 0", kl)
	}
	if !(ess > 0.97) {
		t.Errorf("ESS = %v of the samples, want ≈ 1", ess)
	}
	if math.Abs(est-logZ) > 0.01 {
		t.Errorf("log Z estimate %v, exact %v", est, logZ)
	}
}

// TestFitVIDeterministic checks that the same key and configuration give
// the same parameters and losses, bit for bit.
func TestFitVIDeterministic(t *testing.T) {
	run := func() (flows.Params, []float64) {
		p, b := viFlow(t, 0.1)
		kls, err := optim.FitVI(flows.NewKey(8), b, p, viBanana(), optim.VIConfig{Steps: 20, Samples: 32, LR: 1e-2})
		if err != nil {
			t.Fatal(err)
		}
		return p, kls
	}
	p1, k1 := run()
	p2, k2 := run()
	if !sameBits(p1, p2) || !sameBits(k1, k2) {
		t.Error("two fits with the same key differ")
	}
}

// TestReverseKLNoInverseVJP checks the error for a bijection without an
// InverseVJP: it says so and lists layers that have one, zeroes grad, and
// FitVI returns it without touching p.
func TestReverseKLNoInverseVJP(t *testing.T) {
	p, b := viFlow(t, 0.1)
	b.InverseVJP = nil
	grad := make(flows.Params, len(p))
	for i := range grad {
		grad[i] = 1
	}
	_, err := optim.ReverseKL(flows.NewKey(1), b, p, viBanana(), 8, grad)
	if err == nil {
		t.Fatal("no error for a bijection without InverseVJP")
	}
	for _, want := range []string{"optim: ReverseKL: the bijection has no InverseVJP", "AffineCoupling", "InvertibleLinear"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for i, g := range grad {
		if g != 0 {
			t.Fatalf("grad[%d] = %v after the error, want 0", i, g)
		}
	}
	before := append(flows.Params(nil), p...)
	if _, err := optim.FitVI(flows.NewKey(1), b, p, viBanana(), optim.VIConfig{Steps: 3}); err == nil || !strings.Contains(err.Error(), "no InverseVJP") {
		t.Errorf("FitVI error = %v, want one about InverseVJP", err)
	}
	if !sameBits(p, before) {
		t.Error("FitVI changed p although it could not start")
	}
}

// TestReverseKLNonFinite checks that a non-finite target value or gradient
// is an error naming the first bad sample, with grad zeroed, and that
// FitVI names the step and restores the last good parameters.
func TestReverseKLNonFinite(t *testing.T) {
	p, b := viFlow(t, 0.1)
	key := flows.NewKey(6)
	const n = 32
	x, _ := optim.ImportanceLogWeights(key, b, p, viBanana(), n)
	first := -1 // the first sample with x₁ > 0.5
	for i := range n {
		if x.At(i, 0) > 0.5 {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatal("no sample with x₁ > 0.5; choose another key")
	}
	for _, tc := range []struct {
		name string
		bad  func(optim.Target) optim.Target
		want string
	}{
		{"log density", func(tg optim.Target) optim.Target {
			ld := tg.LogDensity
			tg.LogDensity = func(x, _ *mat.Dense) []float64 {
				lp := ld(x, nil)
				for i := range lp {
					if x.At(i, 0) > 0.5 {
						lp[i] = math.Inf(-1)
					}
				}
				return lp
			}
			return tg
		}, "the target's log density is -Inf"},
		{"gradient", func(tg optim.Target) optim.Target {
			gr := tg.Grad
			tg.Grad = func(x, _ *mat.Dense) *mat.Dense {
				g := gr(x, nil)
				n, _ := x.Dims()
				for i := range n {
					if x.At(i, 0) > 0.5 {
						g.Set(i, 1, math.NaN())
					}
				}
				return g
			}
			return tg
		}, "the target's gradient (column 1) is NaN"},
	} {
		grad := make(flows.Params, len(p))
		for i := range grad {
			grad[i] = 1
		}
		_, err := optim.ReverseKL(key, b, p, tc.bad(viBanana()), n, grad)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if want := "sample " + itoa(first) + ":"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q and %q", tc.name, err, want, tc.want)
		}
		for i, g := range grad {
			if g != 0 {
				t.Fatalf("%s: grad[%d] = %v after the error, want 0", tc.name, i, g)
			}
		}
	}

	// A target that turns NaN on its third evaluation: FitVI fails at step
	// 3 and leaves p as it was after step 1 (before step 2's update).
	calls := 0
	tg := viBanana()
	ld := tg.LogDensity
	tg.LogDensity = func(x, _ *mat.Dense) []float64 {
		calls++
		lp := ld(x, nil)
		if calls == 3 {
			lp[4] = math.NaN()
		}
		return lp
	}
	cfg := optim.VIConfig{Steps: 10, Samples: 16, LR: 1e-2}
	kls, err := optim.FitVI(flows.NewKey(7), b, p, tg, cfg)
	if err == nil || !strings.Contains(err.Error(), "optim: FitVI: step 3: optim: ReverseKL: sample 4:") {
		t.Fatalf("FitVI error = %v, want one naming step 3 and sample 4", err)
	}
	if len(kls) != 2 {
		t.Errorf("%d losses recorded, want 2", len(kls))
	}
	p1, _ := viFlow(t, 0.1)
	cfg.Steps = 1
	if _, err := optim.FitVI(flows.NewKey(7), b, p1, viBanana(), cfg); err != nil {
		t.Fatal(err)
	}
	if !sameBits(p, p1) {
		t.Error("after the failure p is not the parameters after step 1")
	}
}

// itoa formats a small non-negative int.
func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestImportanceESS checks the effective sample size fraction and
// LogMeanExp on weights whose values are known in closed form, including
// log weights far beyond exp's range.
func TestImportanceESS(t *testing.T) {
	inf := math.Inf(1)
	log := math.Log
	for _, tc := range []struct {
		name string
		logW []float64
		want float64
	}{
		{"equal", []float64{0.3, 0.3, 0.3, 0.3}, 1},
		{"one of four", []float64{2, -inf, -inf, -inf}, 0.25},
		// (1+2+3+4)² / (4·(1+4+9+16)) = 100/120.
		{"1,2,3,4", []float64{log(1), log(2), log(3), log(4)}, 100.0 / 120},
		{"1,2,3,4 shifted by 1e4", []float64{1e4 + log(1), 1e4 + log(2), 1e4 + log(3), 1e4 + log(4)}, 100.0 / 120},
		{"1,2,3,4 shifted by −1e4", []float64{-1e4 + log(1), -1e4 + log(2), -1e4 + log(3), -1e4 + log(4)}, 100.0 / 120},
		// exp(−1000) underflows to 0: one weight dominates.
		{"dominated", []float64{0, -1000}, 0.5},
		{"all zero", []float64{-inf, -inf}, 0},
		{"single", []float64{-7}, 1},
	} {
		// A log weight near ±1e4 is rounded to about ulp(1e4) ≈ 2e-12, so
		// the weights themselves carry relative errors of that size.
		if got := optim.ImportanceESS(tc.logW); math.Abs(got-tc.want) > 1e-11 {
			t.Errorf("%s: ImportanceESS = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range [][]float64{nil, {0, math.NaN()}, {0, inf}} {
		if got := optim.ImportanceESS(bad); !math.IsNaN(got) {
			t.Errorf("ImportanceESS(%v) = %v, want NaN", bad, got)
		}
		if got := optim.LogMeanExp(bad); !math.IsNaN(got) {
			t.Errorf("LogMeanExp(%v) = %v, want NaN", bad, got)
		}
	}

	for _, tc := range []struct {
		v    []float64
		want float64
	}{
		{[]float64{log(1), log(3)}, log(2)},
		{[]float64{1e4 + log(1), 1e4 + log(3)}, 1e4 + log(2)},
		{[]float64{-1e4 + log(1), -1e4 + log(3), -inf, -inf}, -1e4 + log(1)},
		{[]float64{-inf}, -inf},
	} {
		got := optim.LogMeanExp(tc.v)
		if !(got == tc.want || math.Abs(got-tc.want) <= 1e-12*math.Abs(tc.want)) {
			t.Errorf("LogMeanExp(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// TestFitVIConfigErrors checks that a configuration out of range is an
// error that leaves p alone.
func TestFitVIConfigErrors(t *testing.T) {
	p, b := viFlow(t, 0.1)
	before := append(flows.Params(nil), p...)
	for _, tc := range []struct {
		cfg  optim.VIConfig
		want string
	}{
		{optim.VIConfig{Steps: -1}, "Steps is -1"},
		{optim.VIConfig{Samples: -2}, "Samples is -2"},
		{optim.VIConfig{LR: math.NaN()}, "LR is NaN"},
		{optim.VIConfig{LR: 1e-3, Schedule: optim.Constant(1e-3)}, "both LR"},
		{optim.VIConfig{ClipNorm: math.NaN()}, "ClipNorm is NaN"},
	} {
		_, err := optim.FitVI(flows.NewKey(1), b, p, viBanana(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	if !sameBits(p, before) {
		t.Error("a rejected configuration changed p")
	}
	_, err := optim.FitVI(flows.NewKey(1), b, p, viBanana(), optim.VIConfig{
		Steps: 2, Schedule: func(int, int) float64 { return math.Inf(1) },
	})
	if err == nil || !strings.Contains(err.Error(), "step 1: the schedule gave learning rate +Inf") {
		t.Errorf("bad schedule: error %v", err)
	}
}

// TestFitVIAnneal checks the tempering: β ≡ 1 is the plain fit bit for bit,
// a constant β = ½ fits the tempered target p̃^½ (for the Gaussian, the
// same mean with covariance 2Σ, so the loss settles at −log Z_½ =
// −(log 2π + ½·log det 2Σ)), and a β that is not positive is an error
// naming the step.
func TestFitVIAnneal(t *testing.T) {
	newFlow := func() (flows.Params, flows.Bijection) {
		p, b, err := flows.Serial(flows.ActNorm(), flows.InvertibleLinear())(flows.NewKey(1), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p, b
	}
	sigma := mat.NewSymDense(2, []float64{2, 1.2, 1.2, 1})
	target, logZ := viGaussian([]float64{1, -0.5}, sigma)
	cfg := optim.VIConfig{Steps: 50, Samples: 32, LR: 1e-2}

	p1, b := newFlow()
	k1, err := optim.FitVI(flows.NewKey(2), b, p1, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := newFlow()
	cfg.Anneal = func(int, int) float64 { return 1 }
	k2, err := optim.FitVI(flows.NewKey(2), b, p2, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(p1, p2) || !sameBits(k1, k2) {
		t.Error("Anneal ≡ 1 differs from no annealing")
	}

	p3, _ := newFlow()
	cfg = optim.VIConfig{Steps: 800, Samples: 128, Schedule: optim.Cosine(2e-2, 1e-4),
		Anneal: func(int, int) float64 { return 0.5 }}
	kls, err := optim.FitVI(flows.NewKey(3), b, p3, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Z_½ = ∫ exp(−¼(x−μ)ᵀΣ⁻¹(x−μ)) = 2π·√det(2Σ) = 2·Z in two dimensions.
	want := -(logZ + math.Log(2))
	tail := 0.0
	for _, v := range kls[len(kls)-100:] {
		tail += v / 100
	}
	t.Logf("tempered loss %.5f, −log Z_½ %.5f", tail, want)
	if math.Abs(tail-want) > 0.01 {
		t.Errorf("tempered loss settles at %v, want −log Z_½ = %v", tail, want)
	}

	p4, _ := newFlow()
	cfg = optim.VIConfig{Steps: 5, Anneal: func(step, _ int) float64 { return float64(2 - step) }}
	kls, err = optim.FitVI(flows.NewKey(3), b, p4, target, cfg)
	if err == nil || !strings.Contains(err.Error(), "step 3: Anneal gave inverse temperature 0") || len(kls) != 2 {
		t.Errorf("β = 0 at step 3: error %v after %d steps", err, len(kls))
	}
}
