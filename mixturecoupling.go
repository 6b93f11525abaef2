package flows

// The logistic-mixture CDF coupling layer of Flow++ (Ho, Chen, Srinivas,
// Duan and Abbeel, "Flow++: Improving Flow-Based Generative Models with
// Variational Dequantization and Architecture Design", 2019): the
// LogisticMixture transformer and its preset over Coupling. The scalar core
// (set-up, evaluation in log space, pullbacks, root finder) is in mixture.go.
//
// # The map
//
// For rows of width dim ≥ 2, x = [x1 | x2] splits as in Coupling. x1 passes
// through unchanged; the net maps it (with the context c, when there is
// one) to W = 3K+2 numbers per transformed column (K = components), and
// each column of x2 goes through its own monotone map:
//
//	[θ_0 | θ_1 | … | θ_{d2−1}] = net([x1 | c])   (net: d1 + contextDim → d2·(3K+2) columns)
//	θ_j = [π (K) | μ (K) | ŝ (K) | â | b]
//	w = softmax(π),  log s_k = 7·tanh(ŝ_k/7),  a = 3·tanh(â/3)
//	F(x) = Σ_k w_k·σ((x − μ_k)·exp(−log s_k))   (a logistic mixture's CDF)
//	z2_j = logit(F(x2_j))·exp(a) + b
//	logDet = Σ_j [log f(x2_j) − log F(x2_j) − log(1 − F(x2_j)) + a]
//
// where σ(t) = 1/(1 + e^{−t}), logit = σ⁻¹, and f = F′ is the mixture's
// density. Inverse solves z2_j = logit(F(x2_j))·e^a + b for x2_j with a
// bracketed root finder (below), and its logDet is the negative of Direct's
// at the solution.
//
// # Bounds and initialisation
//
// The log-scales are bounded smoothly, log s = 7·tanh(ŝ/7) ∈ (−7, 7), so a
// component's scale stays within (e⁻⁷, e⁷) ≈ (9e-4, 1097) and its gradient
// never vanishes abruptly, and the affine log-scale like AffineCoupling's,
// a = 3·tanh(â/3) ∈ (−3, 3). The logits and means are unbounded. A net that
// starts with zero output, as MLP does, gives K equal components with μ = 0
// and s = 1, so F = σ and z2 = logit(σ(x2)) = x2: the layer starts as the
// identity (up to rounding: a few ulps of max(1, |x|, log K)).
//
// # Tails and extreme inputs
//
// Far out, 1 − F(x) (or F(x)) is dominated by the components of largest
// scale s_max = max_k s_k (among those of nonzero weight), so logit F(x) is
// asymptotically linear: z2 ≈ e^a·(x − μ*)/s_max + const, and the log-det
// term tends to a − log s_max ∈ (−10, 10). So the layer acts on data of
// any scale, affinely beyond its components.
//
// log F and log(1 − F) are computed in log space (log-sum-exp over
// log σ(±t_k) = −softplus(∓t_k)), never by subtracting from one, and
// logit F as their difference, or, where F ∈ [¼, ¾] and that difference
// would keep only absolute accuracy, as 2·atanh(Σ_k w_k·tanh(t_k/2)). The
// log-det term is computed as log(f/F + f/(1−F)), with f/F and f/(1−F)
// sums of non-negative terms through normalised weights, which avoids the
// cancellation of its three-term form in the tails. So |x| = 1e3, 1e300
// and beyond give finite outputs, log-dets and gradients. Results overflow
// to ±Inf only where the exact values are beyond float64: when some
// |x − μ_k|·e^{−log s_k} exceeds MaxFloat64 (|x| ≳ 1e304 for moderate μ),
// when |z2| would, or when a gradient would (∂x2/∂â = −r·∂x2/∂r with
// |r| ≈ MaxFloat64, say); an element whose output overflowed gets zero
// gradient. Conditioner outputs that are not finite, which only an
// overflowing net produces, are read as +Inf → MaxFloat64, −Inf →
// −MaxFloat64 and NaN → 0, and receive zero gradient. No finite input
// gives a NaN output, log-det, or gradient to x2 or to the conditioner's
// outputs (the net's own pullback may still turn an infinite gradient
// into NaN, as Inf·0).
//
// # Inverse
//
// For r = (z2 − b)·e^{−a}, x2 solves logit F(x) = r. Since logit F(x) lies
// between min_k and max_k of t_k = (x − μ_k)/s_k, the root lies in
// [min_k(μ_k + r·s_k), max_k(μ_k + r·s_k)]; this bracket is checked (and,
// when rounding has moved it, expanded by steps growing 16-fold, at most 64
// per side) and the root refined by Newton's method safeguarded by
// bisection (rtsafe: a Newton step is taken only when it stays inside the
// bracket and is at most half the step before last; bisection halves the
// bracket absolutely within [−1, 1] and in the ordering of float64 values
// beyond, so 63 bisections shrink any bracket below the tolerance). The
// tolerance is 1e-13·max(1, |x*|) for the root x*, measured by the
// smallest |x| in the current bracket. It stops when the bracket is
// narrower than that (a guaranteed bound), or when a Newton correction is
// within it and a second evaluation at the corrected point confirms it (f
// changes sign there, or the next correction is within it too: the error
// is then of the order of the correction's square, i.e. rounding), or
// after 100 iterations. Each iteration evaluates the map once or twice,
// and a whole inversion at most 2·(1 + 64 + 1) + 2·100 + 1 times; typical
// inversions take 2 (one component) to 8 evaluations.
//
// # Gradients
//
// The pullback is hand-written: it reaches x2, every π (through the
// softmax), μ, ŝ (through the bound), â and b, then the net. The inverse's
// is the implicit-function pullback of logit F(x; θ) = r (∂x/∂r = 1/ℓ′,
// ∂x/∂θ = −(∂ℓ/∂θ)/ℓ′ with ℓ = logit F), the log-det's dependence on x
// chained through it. Where ℓ′ is below e^{−600} (a plateau between
// far-apart narrow components, where every x in the plateau gives the same
// float64 output and the inverse is numerically undetermined), 1/ℓ′ is
// taken as e^{600} so that the gradient stays finite.

import "fmt"

// LogisticMixtureCoupling returns the logistic-mixture CDF coupling layer of
// Flow++ (Ho et al., 2019): Coupling over LogisticMixture(components), each
// column of x2 mapped by logit(F(x))·exp(a) + b, F a mixture's CDF, with
// parameters from a conditioner net made by net.
//
// Conditioner output layout, with K = components and W = 3K+2: column j's
// block θ_j = [π (K) | μ (K) | ŝ (K) | â | b] is contiguous, output columns
// [j·W, (j+1)·W). The parameters are exactly the net's, in its layout. A net
// that starts with zero output, as MLP does, makes the layer the identity
// (up to a few ulps). Finite inputs of any size give finite outputs,
// log-dets and gradients (±Inf only where the exact value is beyond
// float64, never NaN). The formulas, bounds, inverse and numerics are in
// mixturecoupling.go's file comment; the split, the context and stacking
// with Reverse are as for Coupling.
//
// Init returns an error for dim < 2, a nil net or components < 1 (errors
// start "flows: LogisticMixtureCoupling:"), and passes on the net's init
// errors. DirectVJP and InverseVJP are both provided. The functions panic
// for a batch without dim columns or parameters of the wrong length. The
// pullbacks keep private copies of what they need (the net's pullback
// aside, see MLP) and may be called any number of times, from any goroutine.
func LogisticMixtureCoupling(net NetInitFunc, components int) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newCoupling("LogisticMixtureCoupling", net, key, dim, contextDim, LogisticMixture(components))
	}
}

// LogisticMixture returns the logistic-mixture CDF transformer of Flow++
// with components mixture components: Params = 3K+2 per element, laid out
// [π (K) | μ (K) | ŝ (K) | â | b], and
//
//	y = logit(F(x))·exp(a) + b,   F(x) = Σ_k w_k·σ((x − μ_k)·exp(−log s_k))
//
// with w = softmax(π), log s_k = 7·tanh(ŝ_k/7) and a = 3·tanh(â/3) (its
// accuracy and limits are in mixturecoupling.go's file comment). Its
// inverse is a bracketed, safeguarded Newton iteration to
// 1e-13·max(1, |x|). θ = 0 is the identity (up to rounding). Fewer than
// one component gives a transformer whose layers fail to initialise.
func LogisticMixture(components int) Transformer {
	k := components
	if k < 1 {
		return Transformer{Name: "LogisticMixture", err: fmt.Errorf("transformer LogisticMixture: %d components, want at least 1", k)}
	}
	// Each call keeps its scratch on its own stack for K ≤ lmixStackK.
	return Transformer{
		Name:   "LogisticMixture",
		Params: 3*k + 2,
		Forward: func(th []float64, x float64) (float64, float64) {
			var arr [lmixBufPer * lmixStackK]float64
			return lmixForward(th, x, lmixScratch(k, arr[:]))
		},
		Inverse: func(th []float64, y float64) (float64, float64) {
			var arr [lmixBufPer * lmixStackK]float64
			return lmixInverse(th, y, lmixScratch(k, arr[:]))
		},
		ForwardVJP: func(th []float64, x, _, gy, gl float64, dth []float64) float64 {
			var arr [lmixBufPer * lmixStackK]float64
			_, _, dx := lmixForwardVJP(th, x, gy, gl, dth, lmixScratch(k, arr[:]))
			return dx
		},
		InverseVJP: func(th []float64, y, x, gx, gl float64, dth []float64) float64 {
			var arr [lmixBufPer * lmixStackK]float64
			return lmixInverseBack(th, y, x, gx, gl, dth, lmixScratch(k, arr[:]))
		},
	}
}
