package flows

// The logistic-mixture CDF map of Flow++, the scalar core of
// LogisticMixture: set-up from θ, evaluation in log space, the
// implicit-function pullback and the bracketed root finder of its inverse.
// See mixturecoupling.go's file comment for the map, its bounds and its
// accuracy.

import "math"

// Limits of the logistic-mixture map; see mixturecoupling.go's file comment.
const (
	// lmixLogScaleBound bounds the components' log-scales:
	// log s = 7·tanh(ŝ/7).
	lmixLogScaleBound = 7
	// lmixAffineBound bounds the affine log-scale: a = 3·tanh(â/3).
	lmixAffineBound = 3
	// lmixStackK is the largest K whose scratch the coupling keeps on the
	// stack; larger K allocate one scratch slice per row.
	lmixStackK = 16
	// lmixBufPer is the scratch length per component (see lmixSetup).
	lmixBufPer = 17
	// lmixTol is the inverse's tolerance on x, relative to max(1, |x|).
	lmixTol = 1e-13
	// lmixMaxIter caps the inverse's Newton/bisection iterations.
	lmixMaxIter = 100
	// lmixMaxExpand caps the bracket expansions per side.
	lmixMaxExpand = 64
	// lmixExpandStart is the first bracket expansion, relative to
	// max(1, |end|); each next one is 16 times larger.
	lmixExpandStart = 0x1p-40
	// lmixMaxLogInvSlope caps log(1/ℓ′) in the inverse's pullback.
	lmixMaxLogInvSlope = 600
	// lmixNearHalf = log 3: below it (F within [¼, ¾]), ℓ is computed as
	// 2·atanh(2F − 1).
	lmixNearHalf = 1.0986122886681098
)

// lmix is the logistic-mixture map of one column, set up from its W = 3K+2
// conditioner outputs θ = [π (K) | μ (K) | ŝ (K) | â | b], with scratch for
// the quantities at one point x. Writing t_k = (x − μ_k)·ρ_k,
// ρ_k = e^{−log s_k}, σ⁺_k = σ(t_k), σ⁻_k = σ(−t_k):
//
//	F = Σ_k w_k σ⁺_k,  1 − F = Σ_k w_k σ⁻_k,  f = Σ_k w_k ρ_k σ⁺_k σ⁻_k,
//	ℓ = log F − log(1 − F)                  (= logit F; 2·atanh(2F − 1) near F = ½)
//	λ = log ℓ′ = log(f/F + f/(1−F))         (ℓ′ = f/(F(1−F)))
//
// with the normalised weights (each a softmax, so each in [0, 1])
//
//	β_k = w_k σ⁺_k / F,   α_k = w_k σ⁻_k / (1 − F),   γ_k = w_k ρ_k σ⁺_k σ⁻_k / f,
//
// computed from their logs A_k = log w_k + log σ⁺_k, B_k = log w_k + log σ⁻_k
// and G_k = log w_k − log s_k + log σ⁺_k + log σ⁻_k by subtracting the
// maximum. Then f/F = Σ_k β_k σ⁻_k ρ_k and f/(1−F) = Σ_k α_k σ⁺_k ρ_k, sums
// of non-negative terms, so ℓ′ is evaluated (in log space) without the
// cancellation between log f and log F(1−F) that its three-term form
// suffers in the tails.
type lmix struct {
	k                         int
	logw, w, mu, ls, dls, rho []float64 // log w_k, w_k, μ_k, log s_k, ∂log s_k/∂ŝ_k, ρ_k
	a, da, ea, b              float64   // a, ∂a/∂â, e^a, b
	lsMax                     float64   // max log s_k over components of nonzero weight

	// At the point at (set by point).
	at                 float64
	t, lp, lm, A, B, G []float64 // t_k, log σ⁺_k, log σ⁻_k, A_k, B_k, G_k (G by coeffs)
	mA, lA, mB, lB     float64   // log F = mA + lA, log(1 − F) = mB + lB
	ell, ldMix         float64   // ℓ and λ = log ℓ′

	// Set by coeffs: c_k = ∂ℓ/∂t_k, d_k = ∂λ/∂t_k (at fixed s), γ_k,
	// β_k − α_k and β_k + α_k.
	c, d, gam, bma, bpa []float64
}

// lmixFinite maps +Inf to MaxFloat64, −Inf to −MaxFloat64 and NaN to 0,
// and returns finite v unchanged.
func lmixFinite(v float64) float64 {
	switch {
	case v-v == 0: // false for ±Inf and NaN
		return v
	case v > 0:
		return math.MaxFloat64
	case v < 0:
		return -math.MaxFloat64
	}
	return 0
}

// lmixScratch returns buf when it holds lmixBufPer·K values, else a new
// slice of that length.
func lmixScratch(k int, buf []float64) []float64 {
	if len(buf) >= lmixBufPer*k {
		return buf
	}
	return make([]float64, lmixBufPer*k)
}

// lmixSetup returns the map for θ (length 3K+2, any values), using buf
// (see lmixScratch) for its slices. (It returns m by value: filling the
// slices in through a pointer would make escape analysis move the callers'
// stack scratch to the heap.)
func lmixSetup(th, buf []float64) (m lmix) {
	k := (len(th) - 2) / 3
	if k < 1 || len(th) != 3*k+2 {
		panic("flows: logistic mixture: len(theta) != 3K+2")
	}
	buf = lmixScratch(k, buf)
	m.k = k
	part := func(i int) []float64 { return buf[i*k : (i+1)*k : (i+1)*k] }
	m.logw, m.w, m.mu, m.ls, m.dls, m.rho = part(0), part(1), part(2), part(3), part(4), part(5)
	m.t, m.lp, m.lm, m.A, m.B, m.G = part(6), part(7), part(8), part(9), part(10), part(11)
	m.c, m.d, m.gam, m.bma, m.bpa = part(12), part(13), part(14), part(15), part(16)
	m.at = math.NaN()

	// log w = π − max π − log Σ e^{π − max π}: every exponent is ≤ 0, so
	// nothing overflows, and a weight that underflows keeps its log.
	mx := lmixFinite(th[0])
	for _, v := range th[1:k] {
		mx = max(mx, lmixFinite(v))
	}
	var sum float64
	for i := range k {
		e := math.Exp(lmixFinite(th[i]) - mx)
		m.w[i] = e
		sum += e
	}
	lsum := math.Log(sum)
	m.lsMax = math.Inf(-1)
	for i := range k {
		m.logw[i] = (lmixFinite(th[i]) - mx) - lsum
		m.w[i] /= sum
		m.mu[i] = lmixFinite(th[k+i])
		h := math.Tanh(lmixFinite(th[2*k+i]) / lmixLogScaleBound)
		m.ls[i] = lmixLogScaleBound * h
		m.dls[i] = 1 - h*h
		m.rho[i] = math.Exp(-m.ls[i])
		if m.logw[i] > math.Inf(-1) {
			m.lsMax = max(m.lsMax, m.ls[i])
		}
	}
	h := math.Tanh(lmixFinite(th[3*k]) / lmixAffineBound)
	m.a = lmixAffineBound * h
	m.da = 1 - h*h
	m.ea = math.Exp(m.a)
	m.b = lmixFinite(th[3*k+1])
	return m
}

// lmixLogSigmoid returns log σ(t) = −softplus(−t) = min(t, 0) − log1p(e^{−|t|}),
// accurate in both tails, 0 at +Inf and −Inf at −Inf.
func lmixLogSigmoid(t float64) float64 {
	return min(t, 0) - math.Log1p(math.Exp(-math.Abs(t)))
}

// lmixSigmoid returns σ(t) without overflow, with full relative accuracy in
// both tails.
func lmixSigmoid(t float64) float64 {
	if t >= 0 {
		return 1 / (1 + math.Exp(-t))
	}
	e := math.Exp(t)
	return e / (1 + e)
}

// lmixLSE returns m = max_k v_k and l = log1p(Σ_{k≠argmax} e^{v_k − m}), so
// that log Σ_k e^{v_k} = m + l with l ∈ [0, log K]; m = −Inf (and l = 0)
// when every entry is −Inf. No entry may be NaN or +Inf.
func lmixLSE(v []float64) (m, l float64) {
	m, arg := math.Inf(-1), -1
	for i, x := range v {
		if x > m {
			m, arg = x, i
		}
	}
	if arg < 0 {
		return m, 0
	}
	var s float64
	for i, x := range v {
		if i != arg {
			s += math.Exp(x - m)
		}
	}
	return m, math.Log1p(s)
}

// lmixLogSoft returns the log-softmax weight v − (m + l) of an entry v of a
// vector whose lmixLSE is (m, l), subtracting the maximum first (exact for
// the largest entry however large the entries); −Inf when m is.
func lmixLogSoft(v, m, l float64) float64 {
	if m == math.Inf(-1) {
		return m
	}
	return (v - m) - l
}

// lmixSoft returns the softmax weight exp(lmixLogSoft(v, m, l)).
func lmixSoft(v, m, l float64) float64 {
	if m == math.Inf(-1) {
		return 0
	}
	return math.Exp((v - m) - l)
}

// lmixMul0 returns a·b, or 0 when either is 0 (so that a zero gradient
// times an infinite value is zero, not NaN).
func lmixMul0(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a * b
}

// lmixAdd adds v into dth[i] when the conditioner output th[i] is finite;
// a non-finite output (read through lmixFinite) gets no gradient.
func lmixAdd(dth, th []float64, i int, v float64) {
	if th[i]-th[i] == 0 {
		dth[i] += v
	}
}

// point evaluates ℓ and λ = log ℓ′ at x (see lmix), keeping the per-component
// values for coeffs. ℓ is never NaN for x not NaN: the component of largest
// weight has finite A or B, so log F and log(1 − F) are not both −Inf.
func (m *lmix) point(x float64) {
	m.at = x
	for i := range m.k {
		t := (x - m.mu[i]) * m.rho[i]
		lp, lm := lmixLogSigmoid(t), lmixLogSigmoid(-t)
		m.t[i], m.lp[i], m.lm[i] = t, lp, lm
		m.A[i] = m.logw[i] + lp
		m.B[i] = m.logw[i] + lm
	}
	m.mA, m.lA = lmixLSE(m.A)
	m.mB, m.lB = lmixLSE(m.B)
	m.ell = (m.mA - m.mB) + (m.lA - m.lB)
	if math.Abs(m.ell) < lmixNearHalf {
		// Near F = ½ the difference of logs keeps only absolute accuracy
		// (an ulp of log 2); ℓ = log((1 + D)/(1 − D)) = 2·atanh(D) with
		// D = 2F − 1 = Σ_k w_k·tanh(t_k/2) keeps relative accuracy, so
		// that, say, the identity at init maps tiny x to themselves.
		var d float64
		for i := range m.k {
			d += m.w[i] * math.Tanh(m.t[i]/2)
		}
		m.ell = 2 * math.Atanh(d)
	}
	// λ = log Σ_k (e^{P_k} + e^{Q_k}), P_k = log α_k + log σ⁺_k − log s_k,
	// Q_k = log β_k + log σ⁻_k − log s_k: the log-sum-exp of 2K terms.
	mx := math.Inf(-1)
	for i := range m.k {
		mx = max(mx, m.logP(i), m.logQ(i))
	}
	if mx == math.Inf(-1) {
		m.ldMix = mx
		return
	}
	var s float64
	for i := range m.k {
		s += math.Exp(m.logP(i)-mx) + math.Exp(m.logQ(i)-mx)
	}
	m.ldMix = mx + math.Log(s)
}

// logP is log(α_k σ⁺_k ρ_k), component i's share of f/(1 − F) in log space.
func (m *lmix) logP(i int) float64 { return lmixLogSoft(m.B[i], m.mB, m.lB) + m.lp[i] - m.ls[i] }

// logQ is log(β_k σ⁻_k ρ_k), component i's share of f/F in log space.
func (m *lmix) logQ(i int) float64 { return lmixLogSoft(m.A[i], m.mA, m.lA) + m.lm[i] - m.ls[i] }

// output returns the map's value y = ℓ·e^a + b and log-derivative λ + a at
// the current point. Where ℓ has overflowed (every t_k of nonzero weight
// is infinite), y = ℓ = ±Inf and the log-derivative is the tails' limit
// a − log s_max.
func (m *lmix) output() (y, ld float64) {
	if math.IsInf(m.ell, 0) {
		return m.ell, m.a - m.lsMax
	}
	return m.ell*m.ea + m.b, m.ldMix + m.a
}

// coeffs sets c, d, gam, bma and bpa at the current point and returns
// ∂λ/∂x = Σ_k d_k ρ_k.
//
// Differentiating log F = LSE_k(A_k) − LSE(π), log(1 − F) = LSE_k(B_k) −
// LSE(π) and log f = LSE_k(G_k) − LSE(π) (d/dt log σ(t) = σ(−t)):
//
//	∂log F/∂t_k = β_k σ⁻_k,   ∂log(1−F)/∂t_k = −α_k σ⁺_k,
//	∂log f/∂t_k = γ_k (σ⁻_k − σ⁺_k),
//
// so, as ℓ = log F − log(1−F) and λ = log f − log F − log(1−F),
//
//	c_k = ∂ℓ/∂t_k = β_k σ⁻_k + α_k σ⁺_k,
//	d_k = ∂λ/∂t_k = (γ_k − β_k) σ⁻_k + (α_k − γ_k) σ⁺_k,
//
// both bounded (|d_k| ≤ 2, 0 ≤ c_k ≤ 2), and ℓ′ = Σ_k c_k ρ_k.
func (m *lmix) coeffs() (dLdx float64) {
	for i := range m.k {
		m.G[i] = m.logw[i] - m.ls[i] + m.lp[i] + m.lm[i]
	}
	mG, lG := lmixLSE(m.G)
	for i := range m.k {
		al := lmixSoft(m.B[i], m.mB, m.lB)
		be := lmixSoft(m.A[i], m.mA, m.lA)
		ga := lmixSoft(m.G[i], mG, lG)
		sp, sm := lmixSigmoid(m.t[i]), lmixSigmoid(-m.t[i])
		m.c[i] = be*sm + al*sp
		m.d[i] = (ga-be)*sm + (al-ga)*sp
		m.gam[i], m.bma[i], m.bpa[i] = ga, be-al, be+al
		dLdx += m.d[i] * m.rho[i]
	}
	return dLdx
}

// back is the pullback of (ℓ, λ) through the mixture parameters at the
// current point, after coeffs: given gEll = ∂L/∂ℓ and gL = ∂L/∂λ it adds
// ∂L/∂π, ∂L/∂μ and ∂L/∂ŝ into dth and returns ∂L/∂x. With
// t̄_k = gEll·c_k + gL·d_k and t_k = (x − μ_k)·e^{−log s_k}:
//
//	∂L/∂x = Σ_k t̄_k ρ_k,   ∂L/∂μ_k = −t̄_k ρ_k,
//	∂L/∂log s_k = −t̄_k t_k − gL·γ_k          (f has the factor ρ_k = e^{−log s_k}),
//	∂L/∂ŝ_k = ∂L/∂log s_k · (1 − tanh²(ŝ_k/7)),
//	∂L/∂π_j = gEll·(β_j − α_j) + gL·(γ_j − β_j − α_j + w_j),
//
// the last because log F, log(1−F) and log f each have the form
// LSE_k(π_k + …) − LSE(π), whose π_j-derivative is the entry's weight
// (β_j, α_j, γ_j) minus w_j.
func (m *lmix) back(gEll, gL float64, th, dth []float64) (dx float64) {
	k := m.k
	for i := range k {
		tb := gEll*m.c[i] + gL*m.d[i]
		dx += tb * m.rho[i]
		lmixAdd(dth, th, i, gEll*m.bma[i]+gL*(m.gam[i]-m.bpa[i]+m.w[i]))
		lmixAdd(dth, th, k+i, -tb*m.rho[i])
		// t̄_k is 0 where t_k is infinite (that component's weights
		// vanish there), so lmixMul0 keeps 0·Inf out.
		lmixAdd(dth, th, 2*k+i, lmixMul0(m.dls[i], -lmixMul0(tb, m.t[i])-gL*m.gam[i]))
	}
	return dx
}

// lmixForward evaluates the map of one column with conditioner outputs th
// (length 3K+2, layout [π | μ | ŝ | â | b], any values) at x and returns
// y = logit(F(x))·e^a + b and logDeriv = log ∂y/∂x. buf is scratch (see
// lmixScratch; nil allocates).
func lmixForward(th []float64, x float64, buf []float64) (y, logDeriv float64) {
	m := lmixSetup(th, buf)
	m.point(x)
	return m.output()
}

// lmixForwardVJP computes what lmixForward does and the pullback of L with
// ∂L/∂y = gy and ∂L/∂logDeriv = gl: it returns dx = ∂L/∂x and ADDS ∂L/∂θ
// into dth (length 3K+2). An element whose y has overflowed to ±Inf gets
// zero gradient.
//
// With y = ℓ·e^a + b and logDeriv = λ + a: ∂L/∂ℓ = gy·e^a, ∂L/∂λ = gl
// (then back), ∂L/∂â = (gy·ℓ·e^a + gl)·(1 − tanh²(â/3)), ∂L/∂b = gy.
func lmixForwardVJP(th []float64, x, gy, gl float64, dth, buf []float64) (y, logDeriv, dx float64) {
	m := lmixSetup(th, buf)
	m.point(x)
	y, logDeriv = m.output()
	if math.IsInf(m.ell, 0) {
		return y, logDeriv, 0
	}
	m.coeffs()
	dx = m.back(gy*m.ea, gl, th, dth)
	k := m.k
	lmixAdd(dth, th, 3*k, lmixMul0(m.da, lmixMul0(gy, m.ell)*m.ea+gl))
	lmixAdd(dth, th, 3*k+1, gy)
	return y, logDeriv, dx
}

// lmixInverse solves y = logit(F(x))·e^a + b for x and returns x and
// logDeriv = log ∂x/∂y = −(λ(x) + a). buf is scratch (nil allocates).
func lmixInverse(th []float64, y float64, buf []float64) (x, logDeriv float64) {
	x, logDeriv, _ = lmixInverseIters(th, y, buf)
	return x, logDeriv
}

// lmixInverseIters is lmixInverse, also returning how many times the root
// finder evaluated the map.
func lmixInverseIters(th []float64, y float64, buf []float64) (x, logDeriv float64, evals int) {
	m := lmixSetup(th, buf)
	x, _, evals = m.invert(y)
	return x, m.inverseLogDeriv(), evals
}

// lmixInverseVJP computes what lmixInverse does and the pullback of L with
// ∂L/∂x = gx and ∂L/∂logDeriv = gl: it returns dy = ∂L/∂y and ADDS ∂L/∂θ
// into dth. See inverseBack.
func lmixInverseVJP(th []float64, y, gx, gl float64, dth, buf []float64) (x, logDeriv, dy float64) {
	m := lmixSetup(th, buf)
	x, r, _ := m.invert(y)
	logDeriv = m.inverseLogDeriv()
	return x, logDeriv, m.inverseBack(r, gx, gl, th, dth)
}

// lmixInverseBack is the pullback of lmixInverseVJP at y, given the x that
// lmixInverse returned for it (so the root is not solved again).
func lmixInverseBack(th []float64, y, x, gx, gl float64, dth, buf []float64) (dy float64) {
	m := lmixSetup(th, buf)
	r := (y - m.b) / m.ea
	if r-r == 0 {
		m.point(x)
	}
	return m.inverseBack(r, gx, gl, th, dth)
}

// inverseLogDeriv returns −(λ + a) at the current point, or the tails'
// limit log s_max − a where the point or r is infinite (see output).
func (m *lmix) inverseLogDeriv() float64 {
	if m.at-m.at != 0 || math.IsInf(m.ell, 0) {
		return m.lsMax - m.a
	}
	return -(m.ldMix + m.a)
}

// inverseBack is the pullback of the inverse at the current point x, the
// root of ℓ(x; θ) = r with r = (y − b)·e^{−a}; it adds ∂L/∂θ into dth and
// returns ∂L/∂y. By the implicit function theorem, at fixed r,
//
//	∂x/∂r = 1/ℓ′,   ∂x/∂θ = −(∂ℓ/∂θ)/ℓ′   (θ: π, μ, ŝ),
//
// and logDeriv = −λ(x; θ) − a, so with the adjoint of r
//
//	ρ̄ = (gx − gl·∂λ/∂x)/ℓ′,
//
// ∂L/∂θ = −ρ̄·∂ℓ/∂θ − gl·∂λ/∂θ (the mixture pullback with gEll = −ρ̄,
// gL = −gl), and through r: ∂L/∂y = ρ̄·e^{−a}, ∂L/∂b = −ρ̄·e^{−a},
// ∂L/∂a = −ρ̄·r − gl. 1/ℓ′ is e^{−λ} with −λ capped at 600 (see
// mixturecoupling.go's Gradients section). Where r or ℓ(x) is infinite
// the gradient is zero.
func (m *lmix) inverseBack(r, gx, gl float64, th, dth []float64) (dy float64) {
	if r-r != 0 || m.at-m.at != 0 || math.IsInf(m.ell, 0) {
		return 0
	}
	dLdx := m.coeffs()
	inv := math.Exp(min(-m.ldMix, lmixMaxLogInvSlope))
	rbar := (gx - gl*dLdx) * inv
	m.back(-rbar, -gl, th, dth)
	k := m.k
	lmixAdd(dth, th, 3*k, lmixMul0(m.da, -lmixMul0(rbar, r)-gl))
	lmixAdd(dth, th, 3*k+1, -rbar/m.ea)
	return rbar / m.ea
}

// invert solves ℓ(x) = r, r = (y − b)·e^{−a}, for x, and returns x, r and
// the number of evaluations of the map; the current point is then x. For
// r infinite or NaN (|y − b| beyond float64, or y NaN) it returns x = r
// without evaluating.
func (m *lmix) invert(y float64) (x, r float64, evals int) {
	r = (y - m.b) / m.ea
	if r-r != 0 {
		return r, r, 0
	}
	x, evals = m.solve(r)
	if m.at != x {
		m.point(x)
		evals++
	}
	return x, r, evals
}

// solve finds the root of ℓ(x) = r (r finite) as described in
// mixturecoupling.go's Inverse section and returns it and the number
// of evaluations of the map. The tolerance is lmixTol·max(1, x_min), x_min
// the smallest |x| in the current bracket, so it is relative to the root
// however far from it an iterate is.
func (m *lmix) solve(r float64) (x float64, evals int) {
	eval := func(x float64) float64 {
		evals++
		m.point(x)
		return m.ell - r
	}
	// Every t_k of nonzero weight at the root x* satisfies
	// min_k t_k ≤ ℓ(x*) = r ≤ max_k t_k, hence the bracket; x0, the
	// weighted mean of the component roots μ_k + r·s_k, is exact when the
	// components coincide (as at init).
	lo, hi := math.Inf(1), math.Inf(-1)
	var x0 float64
	for i := range m.k {
		if m.logw[i] == math.Inf(-1) {
			continue
		}
		v := m.mu[i] + r/m.rho[i]
		lo, hi = min(lo, v), max(hi, v)
		if m.w[i] > 0 {
			x0 += m.w[i] * v
		}
	}
	lo = min(max(lo, -math.MaxFloat64), math.MaxFloat64)
	hi = min(max(hi, -math.MaxFloat64), math.MaxFloat64)
	tol := func() float64 { return bracketTol(lo, hi, lmixTol) }
	// step is the Newton step at the current point, where f = fx: ±Inf
	// where ℓ′ underflows. ℓ′ > 0, so it points towards the root.
	step := func(fx float64) float64 { return fx / math.Exp(m.ldMix) }
	// accept reports whether x, where f = fx and the Newton step is s,
	// gives the root: s is within the tolerance, and at xn = x − s, which
	// it returns (the point is then there), f changes sign or the next
	// step is within the tolerance too. The confirmation guards against
	// a small step far from the root, where ℓ′ is about to change; its
	// evaluation is the one the log-det needs at the root anyway.
	accept := func(x, fx, s, tol float64) (float64, bool) {
		if !(math.Abs(s) <= tol) {
			return 0, false
		}
		xn := x - s
		if xn == x {
			return x, true
		}
		fn := eval(xn)
		return xn, fn == 0 || (fn < 0) != (fx < 0) || math.Abs(step(fn)) <= tol
	}

	// The root is often at an end (for one component, or at init, the
	// bracket is a point). Rounding can put it just outside: expand until
	// the signs hold.
	flo := eval(lo)
	if xr, ok := accept(lo, flo, step(flo), tol()); ok {
		return xr, evals
	}
	for n, d := 0, lmixExpandStart*max(1, math.Abs(lo)); flo > 0 && lo > -math.MaxFloat64 && n < lmixMaxExpand; n++ {
		lo = max(lo-d, -math.MaxFloat64)
		d *= 16
		flo = eval(lo)
	}
	if flo >= 0 { // a root at lo, or below every float
		return lo, evals
	}
	fhi := eval(hi)
	if xr, ok := accept(hi, fhi, step(fhi), tol()); ok {
		return xr, evals
	}
	for n, d := 0, lmixExpandStart*max(1, math.Abs(hi)); fhi < 0 && hi < math.MaxFloat64 && n < lmixMaxExpand; n++ {
		hi = min(hi+d, math.MaxFloat64)
		d *= 16
		fhi = eval(hi)
	}
	if fhi <= 0 {
		return hi, evals
	}

	// Newton's method safeguarded by bisection (rtsafe), ℓ′ = e^λ.
	evalStep := func(x float64) (float64, float64) {
		fx := eval(x)
		return fx, step(fx)
	}
	x = rtsafe(x0, lo, hi, lmixMaxIter, lmixTol, evalStep, accept)
	return x, evals
}

// lmixKey maps float64 values monotonically to int64 keys: linearly on
// [−1, 1] (key v·2⁵², truncated, so keys step by 2⁻⁵² there) and by the
// ordering of float64 values beyond (one key per float, continuing from
// ±2⁵² at ±1). Bisecting keys halves a bracket in absolute terms near 0 and
// in relative terms far from it, which matches the tolerance
// lmixTol·max(1, |x|); every finite float maps within ±1025·2⁵².
func lmixKey(v float64) int64 {
	a := math.Abs(v)
	if a < 1 {
		return int64(v * 0x1p52)
	}
	k := int64(math.Float64bits(a)-math.Float64bits(1)) + 1<<52
	if v < 0 {
		return -k
	}
	return k
}

// lmixFromKey inverts lmixKey (exactly for keys beyond ±2⁵², and to the
// key's 2⁻⁵² step within).
func lmixFromKey(k int64) float64 {
	a := k
	if a < 0 {
		a = -a
	}
	if a <= 1<<52 {
		return float64(k) * 0x1p-52
	}
	v := math.Float64frombits(uint64(a-1<<52) + math.Float64bits(1))
	if k < 0 {
		return -v
	}
	return v
}

// lmixMid returns a point of the bracket lo < hi (finite): the midpoint of
// their keys (see lmixKey), or, when that is not strictly inside (the keys
// are equal or adjacent), lo/2 + hi/2. So 63 bisections shrink any bracket
// to width 2⁻⁵²·max(1, |x|), below the tolerance lmixTol·max(1, |x|).
func lmixMid(lo, hi float64) float64 {
	a, b := lmixKey(lo), lmixKey(hi)
	// ⌊(a + b)/2⌋ without overflow: a + b can exceed the int64 range.
	if m := lmixFromKey(a>>1 + b>>1 + a&b&1); m > lo && m < hi {
		return m
	}
	return lo/2 + hi/2
}
