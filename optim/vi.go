package optim

// Variational inference with normalizing flows (Rezende and Mohamed, 2015,
// "Variational Inference with Normalizing Flows"): the reverse KL loss and
// its gradient, a fit loop over it, and importance weights to judge a fit.
//
// # The loss
//
// For an unnormalised target p̃ with Z = ∫ p̃ and p = p̃/Z,
//
//	L = E_q[log q(x) − log p̃(x)] = KL(q‖p) − log Z.
//
// log Z does not depend on the flow, so L is the reverse KL divergence up
// to a constant, its minimum −log Z (reached when q = p), and −L is the
// evidence lower bound (ELBO) on log Z.
//
// The flow q is the distribution of x = Inverse(z) for z ~ N(0, I): the
// sampling direction of the bijection b with parameters p, over a fixed
// standard normal base (as in Rezende & Mohamed; the base has no
// parameters). By the change of variables, with ildet(z) = log|det ∂x/∂z|
// the log-determinant that Inverse returns,
//
//	log q(x) = log N(z; 0, I) − ildet(z),
//
// and L is estimated by the reparameterisation trick: with z₁ … zₙ drawn
// from key,
//
//	L̂(p) = (1/n)·Σᵢ [log N(zᵢ) − ildet(zᵢ; p) − log p̃(x(zᵢ; p))].
//
// log N(zᵢ) does not depend on p, so the gradient flows through the Inverse
// pass alone: ∂L̂/∂xᵢ = −∇log p̃(xᵢ)/n and ∂L̂/∂ildetᵢ = −1/n, pulled back to
// p by b.InverseVJP.
//
// # The fit
//
// Step k of FitVI (counting from 1) is
//
//	kl, err := ReverseKL(key.Fold(k), b, p, t, Samples, grad)
//	ClipGlobalNorm(grad, ClipNorm)
//	adam.StepLR(p, grad, Schedule(k−1, Steps))
//
// (with t tempered to β·log p̃, β = Anneal(k−1, Steps), when Anneal is set)
// with an Adam from NewAdam: fresh base samples each step, from a key
// folded with the step. The per-step estimates are noisy (their spread
// shrinks as q nears the target). After a non-finite loss or gradient p is
// restored to the parameters before the previous update, the last ones
// whose loss and gradient were finite, since the update that led to the
// failure is suspect. ActNorm, without data for its data-dependent
// initialisation, starts at the identity and trains like any other layer.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// Target is an unnormalised log density log p̃ over rows of width Dim, with
// its gradient, for ReverseKL and FitVI; with ContextDim > 0 it is a family
// of targets p̃(x | c), one per context c (a posterior given an
// observation, say), and the flow learns q(x | c) for all of them at once
// (amortised variational inference). Its functions are evaluated on batches
// with one point per row (and one context row per point) and must not
// modify their arguments.
type Target struct {
	// Dim is the width of the rows.
	Dim int

	// ContextDim is the width of the contexts, 0 for a single target.
	ContextDim int

	// LogDensity returns log p̃(xᵢ | cᵢ) for each row xᵢ of x (n×Dim), c
	// being nil without a context: the target's log density up to an
	// additive constant (which may depend on c). −Inf (a point where the
	// density is zero) is not allowed where the flow puts samples: a sample
	// with a non-finite log density is an error.
	LogDensity func(x, c *mat.Dense) []float64

	// Grad returns ∇ₓ log p̃(xᵢ | cᵢ) for each row of x, as a new n×Dim
	// matrix.
	Grad func(x, c *mat.Dense) *mat.Dense

	// Contexts draws n contexts (n×ContextDim) from key: the contexts at
	// which ReverseKL estimates the loss, so that FitVI fits q(x | c) over
	// the contexts' distribution. It is required when ContextDim > 0 and
	// unused otherwise.
	Contexts func(key flows.Key, n int) *mat.Dense
}

// contextTag is folded into ReverseKL's key to draw the contexts, apart
// from the base samples (which come from the key itself).
const contextTag = 0x6374787473 // "ctxts"

// contexts draws n contexts of t from key, or returns nil without a
// context; who names the caller in the panic for a Contexts that returns
// the wrong shape.
func (t Target) contexts(who string, key flows.Key, n int) *mat.Dense {
	if t.ContextDim == 0 {
		return nil
	}
	c := t.Contexts(key.Fold(contextTag), n)
	if c == nil {
		panic(fmt.Sprintf("optim: %s: Target.Contexts returned nil", who))
	}
	if r, cc := c.Dims(); r != n || cc != t.ContextDim {
		panic(fmt.Sprintf("optim: %s: Target.Contexts returned %d×%d, want %d×%d", who, r, cc, n, t.ContextDim))
	}
	return c
}

// inverseVJPLayers lists the layers of package flows that provide an
// InverseVJP, for the error of a bijection without one.
const inverseVJPLayers = "AffineCoupling, AffineCouplingBound, AffineCouplingSplit, AdditiveCoupling, NeuralSplineCoupling, " +
	"ActNorm, InvertibleLinear, FixedInvertibleLinear, Reverse, Shuffle, Standardize, Sigmoid, Logit, " +
	"MAF, NeuralSplineAutoregressive, Invert of any of them (IAF = Invert(MAF) samples in one pass), and Serial of any of them"

// ReverseKL estimates, from n samples, the variational loss of the flow q
// against the unnormalised target p̃ = exp(t.LogDensity),
// L = E_q[log q − log p̃] = KL(q‖p) − log Z (Z = ∫ p̃, p = p̃/Z; −L is the
// ELBO), and writes its gradient with respect to p into grad (overwriting
// it; len(grad) == len(p)). q is the distribution of x = b.Inverse(p, z)
// for z ~ N(0, I), and the gradient comes through b.InverseVJP by the
// reparameterisation trick (the derivation is in vi.go's file comment).
//
// The base samples z (n×t.Dim) are drawn from key exactly as the Sample of
// flows.Flow(b, flows.Normal()) draws them, so the same key gives the same
// z and x, and with the key fixed the estimate is a deterministic,
// differentiable function of p; p is also the parameters of that Flow,
// whose LogPDF is q's log density. With a context, t.Contexts draws the
// samples' contexts from key.
//
// ReverseKL returns an error, with grad zeroed, when b has no InverseVJP,
// when a sample gives a non-finite x, log-determinant, target log density
// or target gradient (the error names the first such sample, its row
// counting from 0), or when the mean loss overflows even term by term. It
// panics, with an "optim:" message, for misuse: n < 1, len(grad) ≠ len(p),
// or a bad Target (t.Dim < 1, a nil function it needs, or a function that
// returns the wrong shape).
func ReverseKL(key flows.Key, b flows.Bijection, p flows.Params, t Target, n int, grad flows.Params) (kl float64, err error) {
	const who = "ReverseKL"
	viCheckTarget(who, t)
	if n < 1 {
		panic(fmt.Sprintf("optim: %s: %d samples, want at least 1", who, n))
	}
	if len(grad) != len(p) {
		panic("optim: ReverseKL: gradient length differs from parameter length")
	}
	clear(grad)
	if b.InverseVJP == nil {
		return math.NaN(), fmt.Errorf("optim: %s: the bijection has no InverseVJP; layers that provide one: %s", who, inverseVJPLayers)
	}
	z, logN := viBaseSample(key, t.Dim, n)
	c := t.contexts(who, key, n)
	x, ildet, back := b.InverseVJP(p, z, c)
	logp := t.LogDensity(x, c)
	if len(logp) != n {
		panic(fmt.Sprintf("optim: %s: Target.LogDensity returned %d values for %d rows", who, len(logp), n))
	}
	if err := viCheckSamples(who, x, ildet, logp); err != nil {
		return math.NaN(), err
	}
	g := t.Grad(x, c)
	if r, c := g.Dims(); r != n || c != t.Dim {
		panic(fmt.Sprintf("optim: %s: Target.Grad returned %d×%d, want %d×%d", who, r, c, n, t.Dim))
	}
	// dL/dx = −∇log p̃(x)/n, per row; checked for non-finite entries as it
	// is made, since a NaN there would silently poison every parameter.
	w := 1 / float64(n)
	dx := mat.NewDense(n, t.Dim, nil)
	for i := range n {
		src, dst := g.RawRowView(i), dx.RawRowView(i)
		for j, v := range src {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return math.NaN(), fmt.Errorf("optim: %s: sample %d: the target's gradient (column %d) is %v at x = %v", who, i, j, v, x.RawRowView(i))
			}
			dst[j] = -w * v
		}
	}
	// The per-sample loss is log N(z) − ildet − log p̃(x); log N(z) is
	// constant in p, so dL/dildet = −1/n for every sample.
	losses := make([]float64, n)
	dld := make([]float64, n)
	for i := range losses {
		losses[i] = logN[i] - ildet[i] - logp[i]
		dld[i] = -w
	}
	kl, err = viMean(who, losses)
	if err != nil {
		return kl, err
	}
	back(dx, dld, grad, nil)
	return kl, nil
}

// ImportanceLogWeights draws n samples x from the flow q (b with parameters
// p over a standard normal base, as in ReverseKL, and from the same key the
// same samples) and returns them with their log importance weights against
// the target t,
//
//	log wᵢ = log p̃(xᵢ) − log q(xᵢ).
//
// Since E_q[w] = Z, the weights give:
//
//   - log Z ≈ LogMeanExp(logW), a consistent estimate whose expectation is
//     at most log Z (by Jensen's inequality), close when q is close to p;
//   - the loss of ReverseKL, −mean(logW) = E_q[log q − log p̃] (its
//     negative, mean(logW), is the ELBO, a lower bound on log Z);
//   - ImportanceESS(logW), the effective sample size, near 1 when q ≈ p.
//
// It needs only b's Inverse, not its InverseVJP. An entry of logW is NaN or
// ±Inf when the sample, its log-determinant or its target log density is
// not finite; the caller decides (ImportanceESS and LogMeanExp return NaN).
// It panics for n < 1 and a bad Target, as ReverseKL does.
func ImportanceLogWeights(key flows.Key, b flows.Bijection, p flows.Params, t Target, n int) (x *mat.Dense, logW []float64) {
	const who = "ImportanceLogWeights"
	viCheckTarget(who, t)
	if n < 1 {
		panic(fmt.Sprintf("optim: %s: %d samples, want at least 1", who, n))
	}
	if b.Inverse == nil {
		panic("optim: ImportanceLogWeights: the bijection has no Inverse")
	}
	z, logN := viBaseSample(key, t.Dim, n)
	c := t.contexts(who, key, n)
	x, ildet := b.Inverse(p, z, c)
	logp := t.LogDensity(x, c)
	if len(logp) != n {
		panic(fmt.Sprintf("optim: %s: Target.LogDensity returned %d values for %d rows", who, len(logp), n))
	}
	logW = make([]float64, n)
	for i := range logW {
		// log q(x) = log N(z) − ildet(z).
		logW[i] = logp[i] - (logN[i] - ildet[i])
		if !viFiniteRow(x.RawRowView(i)) {
			logW[i] = math.NaN()
		}
	}
	return x, logW
}

// LogMeanExp returns log((1/n)·Σᵢ exp(vᵢ)) computed stably (shifted by the
// largest entry): with log importance weights, the importance-sampling
// estimate of log Z. Entries of −Inf (zero weights) are allowed; the result
// is −Inf when all are. It returns NaN for an empty slice or one holding a
// NaN or +Inf.
func LogMeanExp(v []float64) float64 {
	m, ok := viMaxFinite(v)
	if !ok {
		return math.NaN()
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s/float64(len(v)))
}

// ImportanceESS returns the effective sample size of the importance weights
// wᵢ = exp(logWeights[i]) as a FRACTION of their number n:
//
//	ESS/n = (Σw)² / (n·Σw²),
//
// which lies in [1/n, 1]: 1 when all weights are equal (q is the target),
// 1/n when one weight dominates. Multiply by len(logWeights) for the count
// (Kish's effective sample size). It is computed in log space, shifted by
// the largest log weight, so it neither overflows nor underflows whatever
// the scale of the weights, and it does not depend on their normalisation.
//
// Entries of −Inf (zero weights) count in n but carry no weight; when all
// are −Inf the result is 0. It returns NaN for an empty slice or one
// holding a NaN or +Inf.
func ImportanceESS(logWeights []float64) float64 {
	m, ok := viMaxFinite(logWeights)
	if !ok {
		return math.NaN()
	}
	if math.IsInf(m, -1) {
		return 0
	}
	// With uᵢ = exp(log wᵢ − m) ≤ 1 (and one of them 1), (Σw)²/Σw² =
	// (Σu)²/Σu², and Σu² ≥ 1, so nothing is lost to underflow.
	var s1, s2 float64
	for _, lw := range logWeights {
		u := math.Exp(lw - m)
		s1 += u
		s2 += u * u
	}
	return s1 * s1 / (s2 * float64(len(logWeights)))
}

// viMaxFinite returns the largest entry of v and true, or false when v is
// empty or holds a NaN or +Inf.
func viMaxFinite(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	m := math.Inf(-1)
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return 0, false
		}
		m = max(m, x)
	}
	return m, true
}

// Defaults of VIConfig, used for fields left at zero.
const (
	defaultVISteps    = 1000
	defaultVISamples  = 256
	defaultVIClipNorm = 5
)

// VIConfig configures FitVI. Every field left at zero takes the default
// given in its comment.
type VIConfig struct {
	// Steps is the number of optimiser steps (default 1000). It must not be
	// negative.
	Steps int

	// Samples is the number of base samples per step, n of ReverseKL
	// (default 256). It must not be negative.
	Samples int

	// LR is the constant learning rate used when Schedule is nil
	// (default 1e-3). It must be finite and not negative, and must be left
	// at zero when Schedule is set.
	LR float64

	// Schedule, when not nil, gives the learning rate of each step, called
	// as Schedule(step, Steps) with step counting from 0. Nil means
	// Constant(LR).
	Schedule Schedule

	// ClipNorm is the bound on the global Euclidean norm of each step's
	// gradient (default 5). A negative value or +Inf turns clipping off;
	// NaN is an error.
	ClipNorm float64

	// Anneal, when not nil, gives the inverse temperature β of each step,
	// called as Anneal(step, Steps) with step counting from 0: the step
	// then minimises E_q[log q − β·log p̃], the reverse KL to the tempered
	// target p̃^β. Rising from a small β to 1, it lets q spread over the
	// whole support before the target sharpens, which helps the
	// mode-seeking reverse KL find every mode; Rezende & Mohamed (2015)
	// use β_t = min(1, 0.01 + t/10000). β must be positive and finite, and
	// should end at 1 for the fit to be of p̃ itself. Nil means β = 1.
	Anneal Schedule

	// Progress, when not nil, is called after every step with the step
	// (counting from 1) and that step's estimate of E_q[log q − log p̃]
	// (E_q[log q − β·log p̃] when annealed), computed at the parameters
	// before the step's update. While it runs, p holds the parameters
	// after the update; it must not change them.
	Progress func(step int, kl float64)
}

// FitVI fits the flow q (the bijection b over a standard normal base, see
// ReverseKL) to the unnormalised target t by minimising the reverse KL
// divergence with Adam, updating p in place, and returns the loss estimate
// E_q[log q − log p̃] (= KL(q‖p) − log Z; E_q[log q − β·log p̃] for a step
// annealed to β) of every step: a noisy record, not a convergence test.
// Step k calls ReverseKL with cfg.Samples fresh base samples from
// key.Fold(k), clips the gradient and takes an Adam step at the schedule's
// rate (the loop is in vi.go's file comment), so the same key, b, p, t and
// configuration give the same parameters, bit for bit, on every GOMAXPROCS.
// It runs no data-dependent initialisation (ActNorm's): there is no data.
//
// A configuration out of range (negative Steps or Samples, a bad LR, LR set
// together with Schedule, a NaN ClipNorm) is an error, with p unchanged, as
// is a bijection without InverseVJP. A non-finite loss or gradient ends the
// fit with an error naming the step (and, from ReverseKL, the sample), with
// p restored to the last parameters whose loss and gradient were finite. A
// schedule rate that is not finite and non-negative, or an Anneal β that is
// not positive and finite, ends the fit with an error before that step's
// update. After an error the slice holds the losses of the steps completed.
// FitVI panics, with an "optim:" message, for a bad Target, as ReverseKL.
func FitVI(key flows.Key, b flows.Bijection, p flows.Params, t Target, cfg VIConfig) ([]float64, error) {
	viCheckTarget("FitVI", t)
	c, sched, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if b.InverseVJP == nil {
		return nil, fmt.Errorf("optim: FitVI: the bijection has no InverseVJP; layers that provide one: %s", inverseVJPLayers)
	}
	grad := make(flows.Params, len(p))
	prev := make(flows.Params, len(p))
	copy(prev, p)
	opt := NewAdam(len(p))
	kls := make([]float64, 0, c.Steps)
	for k := 1; k <= c.Steps; k++ {
		tk := t
		if c.Anneal != nil {
			beta := c.Anneal(k-1, c.Steps)
			if !(beta > 0) || math.IsInf(beta, 1) {
				return kls, fmt.Errorf("optim: FitVI: step %d: Anneal gave inverse temperature %v, want positive and finite", k, beta)
			}
			tk = tempered(t, beta)
		}
		kl, err := ReverseKL(key.Fold(uint64(k)), b, p, tk, c.Samples, grad)
		if err != nil {
			copy(p, prev)
			return kls, fmt.Errorf("optim: FitVI: step %d: %w", k, err)
		}
		if norm := ClipGlobalNorm(grad, c.ClipNorm); math.IsNaN(norm) || math.IsInf(norm, 0) {
			copy(p, prev)
			return kls, fmt.Errorf("optim: FitVI: step %d: the gradient is not finite (norm %v)", k, norm)
		}
		lr := sched(k-1, c.Steps)
		if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
			return kls, fmt.Errorf("optim: FitVI: step %d: the schedule gave learning rate %v", k, lr)
		}
		copy(prev, p)
		opt.StepLR(p, grad, lr)
		kls = append(kls, kl)
		if c.Progress != nil {
			c.Progress(k, kl)
		}
	}
	return kls, nil
}

// tempered returns the target β·log p̃, with gradient β·∇log p̃.
func tempered(t Target, beta float64) Target {
	return Target{
		Dim:        t.Dim,
		ContextDim: t.ContextDim,
		Contexts:   t.Contexts,
		LogDensity: func(x, c *mat.Dense) []float64 {
			lp := append([]float64(nil), t.LogDensity(x, c)...)
			for i := range lp {
				lp[i] *= beta
			}
			return lp
		},
		Grad: func(x, c *mat.Dense) *mat.Dense {
			var g mat.Dense
			g.Scale(beta, t.Grad(x, c))
			return &g
		},
	}
}

// resolve returns cfg with its defaults filled in and the schedule to use,
// or an error naming the first field out of range.
func (cfg VIConfig) resolve() (VIConfig, Schedule, error) {
	c := cfg
	switch {
	case c.Steps < 0:
		return c, nil, fmt.Errorf("optim: FitVI: Steps is %d, want ≥ 0", c.Steps)
	case c.Steps == 0:
		c.Steps = defaultVISteps
	}
	switch {
	case c.Samples < 0:
		return c, nil, fmt.Errorf("optim: FitVI: Samples is %d, want ≥ 0", c.Samples)
	case c.Samples == 0:
		c.Samples = defaultVISamples
	}
	sched, err := resolveRate("FitVI", &c.LR, c.Schedule, &c.ClipNorm, defaultVIClipNorm)
	return c, sched, err
}

// viCheckTarget panics with an "optim:" message naming who when t cannot be
// used.
func viCheckTarget(who string, t Target) {
	if t.Dim < 1 {
		panic(fmt.Sprintf("optim: %s: Target.Dim is %d, want at least 1", who, t.Dim))
	}
	if t.LogDensity == nil || t.Grad == nil {
		panic(fmt.Sprintf("optim: %s: Target has a nil LogDensity or Grad", who))
	}
	if t.ContextDim < 0 || t.ContextDim > 0 && t.Contexts == nil {
		panic(fmt.Sprintf("optim: %s: Target.ContextDim is %d and Contexts is nil, want ContextDim ≥ 0 and Contexts for a positive one", who, t.ContextDim))
	}
}

// viBaseSample draws n rows of the standard normal base from key, exactly as
// flows.Normal's Sample does (and so as a Flow over it samples), and
// returns them with their log densities log N(z; 0, I).
func viBaseSample(key flows.Key, dim, n int) (z *mat.Dense, logN []float64) {
	_, base, err := flows.Normal()(key, dim, 0)
	if err != nil {
		panic("optim: " + err.Error()) // unreachable: dim ≥ 1 is checked
	}
	z = base.Sample(key, nil, n, nil)
	return z, base.LogPDF(nil, z, nil)
}

// viCheckSamples returns an error naming the first sample whose x, inverse
// log-determinant or target log density is not finite.
func viCheckSamples(who string, x *mat.Dense, ildet, logp []float64) error {
	for i := range logp {
		row := x.RawRowView(i)
		switch {
		case !viFiniteRow(row):
			return fmt.Errorf("optim: %s: sample %d: the flow maps it to x = %v", who, i, row)
		case math.IsNaN(ildet[i]) || math.IsInf(ildet[i], 0):
			return fmt.Errorf("optim: %s: sample %d: the log-determinant of Inverse is %v", who, i, ildet[i])
		case math.IsNaN(logp[i]) || math.IsInf(logp[i], 0):
			return fmt.Errorf("optim: %s: sample %d: the target's log density is %v at x = %v", who, i, logp[i], row)
		}
	}
	return nil
}

// viFiniteRow reports whether every entry of row is finite.
func viFiniteRow(row []float64) bool {
	for _, v := range row {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// viMean returns the mean of finite values, averaging term by term when their
// sum overflows; who names the caller in the error for a mean that still
// overflows.
func viMean(who string, v []float64) (float64, error) {
	n := float64(len(v))
	var s float64
	for _, x := range v {
		s += x
	}
	m := s / n
	if math.IsInf(m, 0) {
		m = 0
		for _, x := range v {
			m += x / n
		}
		if math.IsInf(m, 0) {
			return m, fmt.Errorf("optim: %s: the mean loss overflows", who)
		}
	}
	return m, nil
}
