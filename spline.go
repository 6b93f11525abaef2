package flows

import (
	"fmt"
	"math"

	"github.com/gonormflows/flows/internal/vmath"
)

// This file holds the scalar core of the monotonic rational-quadratic spline
// of Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows" (2019),
// with hand-written derivatives. Coupling and autoregressive layers call it
// once per (row, dimension) with that dimension's slice of unconstrained
// parameters θ.
//
// # Parameterisation
//
// For K bins on [−B, B], θ has 3K−1 entries laid out as
//
//	θ = [ θw (K) | θh (K) | θd (K−1) ].
//
// Normalised bin widths are wn_j = mw + (1 − K·mw)·softmax(θw)_j, which sum
// to one and are never below mw (MinBinWidth); the widths are w_j = 2B·wn_j
// and the knots are x_0 = −B, x_k = −B + 2B·Σ_{j<k} wn_j, with the last knot
// set to exactly x_K = B rather than to a rounded cumulative sum. Heights and
// the knots y_k are built the same way from θh with mh (MinBinHeight).
//
// Knot slopes are d_0 = d_K = 1, so the spline joins the identity tails
// outside [−B, B] with a continuous first derivative, and for the K−1
// interior knots
//
//	d_k = md + softplus(θd_{k−1} + c₀),  c₀ = log(exp(1 − md) − 1),
//
// where md is MinDerivative. The shift c₀ makes θd = 0 give d = 1 exactly,
// so θ = 0 gives uniform bins with unit slopes: the identity.
//
// # Within a bin
//
// In bin k, with ξ = (x − x_k)/w_k ∈ [0, 1], s = h_k/w_k, t = ξ(1−ξ) and
// slopes d0 = d_k, d1 = d_{k+1}, the spline is
//
//	g(x)  = y_k + h_k·N/D,          N = s ξ² + d0 t = ξ(sξ + d0(1−ξ)),
//	                                D = s + (d0 + d1 − 2s) t
//	                                  = s(ξ² + (1−ξ)²) + (d0 + d1) t,
//	g'(x) = s²·G/D²,                G = d1 ξ² + 2 s t + d0 (1−ξ)².
//
// D and G are written as sums of non-negative terms, so they are computed
// without cancellation and are strictly positive (s, d0, d1 > 0), which
// makes g strictly increasing. By the symmetry of the spline under
// (x, y, ξ, d0, d1) → (−x, −y, 1−ξ, d1, d0) we also have
// 1 − N/D = M/D with M = (1−ξ)(s(1−ξ) + d1 ξ), and g is evaluated from the
// nearer end of the bin (y_k + h·N/D for ξ ≤ ½, y_{k+1} − h·M/D above), which
// keeps full relative accuracy near both knots and makes g(x_k) = y_k and
// g(B) = B exactly.
//
// # Robustness and clamps
//
// Every function returns finite values and gradients for finite inputs and
// finite θ of any size, provided the configuration passed validate:
//
//   - softmax subtracts the maximum, so exponentials never overflow; those
//     that underflow to zero are harmless because every bin keeps at least
//     the minimum width (height), which validate keeps far above rounding
//     level (≥ 1e-9 of the interval), so adjacent knots never coincide;
//   - softplus is evaluated stably (u + log1p(e^{−u}) for u > 0) and its
//     argument u = θd + c₀ is clamped to at most rqsMaxSoftplusArg, so a
//     knot slope never exceeds md + rqsMaxSoftplusArg (≈ 1000). Beyond the
//     clamp the slope no longer depends on θd and its gradient is zero. The
//     clamp keeps s²G/D² and its derivatives far from overflow and limits
//     how flat a bin can get next to a steep knot (inside a bin g' gets
//     down to about min(d0, d1, s²/max(d0, d1))), which bounds the
//     conditioning of the inverse;
//   - ξ (and 1−ξ) are clamped to [0, 1], which only matters at rounding
//     level next to knots; the gradient ignores this clamp (it is the
//     one-sided derivative there);
//   - the bin index is clamped to [0, K−1], so x exactly at a knot lies in
//     the bin it starts (ξ = 0), and x = B lies in the last bin (ξ = 1);
//   - the inverse solves its quadratic with the cancellation-free formula
//     for the sign of b, clamps the discriminant at zero and clamps ξ into
//     [0, 1] (which also catches 0/0).
//
// Outside [−B, B] (and for NaN inputs) the spline is the identity with zero
// log-derivative and no dependence on θ.
//
// # Scratch memory
//
// The functions need the 2K normalised softmax weights of one dimension.
// They keep them in a fixed array on the stack when K ≤ rqsStackBins (64),
// so they do not allocate; configurations with more bins allocate one slice
// of 2K float64 per call.

// SplineConfig configures a monotonic rational-quadratic spline (Durkan et
// al. 2019) acting on each dimension separately. Zero fields take the
// defaults listed below (see withDefaults).
type SplineConfig struct {
	// Bins is the number of bins K ≥ 2 (default 8).
	Bins int
	// Bound is B: the spline maps [−B, B] onto itself and is the identity
	// (slope 1) outside it. It must be finite, in [1e-100, 1e100]
	// (default 3).
	Bound float64
	// MinBinWidth and MinBinHeight are the smallest bin width and height as
	// fractions of the interval 2B (default 1e-3 each); each must be at
	// least 1e-9 and less than 1/Bins. MinDerivative is the smallest slope
	// at an interior knot (default 1e-3); it must be in [1e-9, 1).
	MinBinWidth, MinBinHeight, MinDerivative float64
}

// Limits of the spline's numerical range; see the overview comment above.
const (
	// rqsStackBins is the largest bin count handled without allocating.
	rqsStackBins = 64
	// rqsMaxSoftplusArg clamps the softplus argument θd + c₀ from above, so
	// interior slopes are at most MinDerivative + rqsMaxSoftplusArg.
	rqsMaxSoftplusArg = 1000
	// rqsMinFraction is the smallest accepted non-zero minimum width,
	// height and slope: narrower bins would not be resolved by float64
	// knots near ±B, and flatter slopes would let g' underflow.
	rqsMinFraction = 1e-9
	// rqsMinBound and rqsMaxBound bound B so that 2B·(bin fraction) and
	// the quadratic of the inverse stay far from underflow and overflow.
	rqsMinBound, rqsMaxBound = 1e-100, 1e100
)

// withDefaults returns c with its zero fields replaced by the defaults:
// 8 bins, bound 3, and 1e-3 for each minimum.
func (c SplineConfig) withDefaults() SplineConfig {
	if c.Bins == 0 {
		c.Bins = 8
	}
	if c.Bound == 0 {
		c.Bound = 3
	}
	if c.MinBinWidth == 0 {
		c.MinBinWidth = 1e-3
	}
	if c.MinBinHeight == 0 {
		c.MinBinHeight = 1e-3
	}
	if c.MinDerivative == 0 {
		c.MinDerivative = 1e-3
	}
	return c
}

// validate reports whether c, after withDefaults, describes a usable spline.
// Zero fields are therefore accepted (they mean "default"); the rqs*
// functions themselves must be given the config returned by withDefaults.
func (c SplineConfig) validate() error {
	c = c.withDefaults()
	if c.Bins < 2 {
		return fmt.Errorf("flows: spline: Bins must be at least 2, got %d", c.Bins)
	}
	if !(c.Bound >= rqsMinBound && c.Bound <= rqsMaxBound) { // also rejects NaN and ±Inf
		return fmt.Errorf("flows: spline: Bound must be positive, finite and in [%g, %g], got %g", rqsMinBound, rqsMaxBound, c.Bound)
	}
	for _, m := range [...]struct {
		name string
		v    float64
	}{{"MinBinWidth", c.MinBinWidth}, {"MinBinHeight", c.MinBinHeight}} {
		if !(m.v >= rqsMinFraction) { // also rejects NaN
			return fmt.Errorf("flows: spline: %s must be at least %g (or 0 for the default), got %g", m.name, rqsMinFraction, m.v)
		}
		if float64(c.Bins)*m.v >= 1 {
			return fmt.Errorf("flows: spline: %s = %g is too large for %d bins: Bins·%s must be below 1", m.name, m.v, c.Bins, m.name)
		}
	}
	if !(c.MinDerivative >= rqsMinFraction && c.MinDerivative < 1) {
		return fmt.Errorf("flows: spline: MinDerivative must be in [%g, 1) (or 0 for the default), got %g", rqsMinFraction, c.MinDerivative)
	}
	return nil
}

// NumParams returns the number of unconstrained parameters per dimension,
// 3·Bins − 1 (Bins after defaults): K widths, K heights and K−1 interior
// knot slopes, in that order.
func (c SplineConfig) NumParams() int {
	return 3*c.withDefaults().Bins - 1
}

// rqsBin is one bin of the spline, as located by a knot search.
type rqsBin struct {
	k         int       // bin index in [0, K−1]
	xLo, xHi  float64   // its knots on the x side: x_k and x_{k+1}
	w         float64   // its width xHi − xLo > 0
	yLo, yHi  float64   // its knots on the y side
	h         float64   // its height yHi − yLo > 0
	d0, d1    float64   // slopes at the left and right knot
	dd0, dd1  float64   // ∂d0/∂θd and ∂d1/∂θd (zero for fixed or clamped slopes)
	pw, ph    []float64 // softmax(θw) and softmax(θh) (in the caller's scratch)
	scaleW    float64   // 1 − K·MinBinWidth: d wn_j / d softmax_j
	scaleH    float64   // 1 − K·MinBinHeight
	sumPLessW float64   // Σ_{j<k} softmax(θw)_j
	sumPLessH float64   // Σ_{j<k} softmax(θh)_j
}

// rqsSoftmax writes softmax(src) into dst (same length ≥ 1). Subtracting
// the maximum keeps every exponential in (0, 1], so the sum is in [1, n] and
// nothing overflows for any finite input.
func rqsSoftmax(dst, src []float64) {
	rqsShiftMax(dst, src)
	vmath.Exp(dst, dst) // math.Exp's bits, vectorised
	rqsNormalize(dst)
}

// rqsSoftmax2 is rqsSoftmax on src[:K] into dst[:K] and on src[K:2K] into
// dst[K:2K], with the same bits, in one call of the vectorised exp (two
// calls on K = 8 values each cost more than the exponentials).
func rqsSoftmax2(dst, src []float64, K int) {
	dst, src = dst[:2*K], src[:2*K]
	rqsShiftMax(dst[:K], src[:K])
	rqsShiftMax(dst[K:], src[K:])
	vmath.Exp(dst, dst)
	rqsNormalize(dst[:K])
	rqsNormalize(dst[K:])
}

// rqsShiftMax sets dst[i] = src[i] − max(src) (same length ≥ 1).
func rqsShiftMax(dst, src []float64) {
	dst = dst[:len(src)]
	m := src[0]
	for _, v := range src[1:] {
		if v > m {
			m = v
		}
	}
	for i, v := range src {
		dst[i] = v - m
	}
}

// rqsNormalize divides e by its sum, summed in order, as 1/sum times each.
func rqsNormalize(e []float64) {
	var sum float64
	for _, v := range e {
		sum += v
	}
	inv := 1 / sum
	for i := range e {
		e[i] *= inv
	}
}

// rqsSoftplus returns softplus(u) = log(1 + e^u) and its derivative
// sigmoid(u), both evaluated without overflow: for u > 0, softplus(u) =
// u + log1p(e^{−u}) and sigmoid(u) = 1/(1 + e^{−u}); otherwise with e^u ≤ 1.
func rqsSoftplus(u float64) (sp, sig float64) {
	if u > 0 {
		e := math.Exp(-u)
		return u + math.Log1p(e), 1 / (1 + e)
	}
	e := math.Exp(u)
	return math.Log1p(e), e / (1 + e)
}

// rqsKnots walks the knots q_0 = −B < q_1 < … < q_K = B defined by the
// softmax weights p (length K), the minimum fraction m and the bound B:
// q_k = −B + 2B·Σ_{j<k} (m + (1 − K·m)·p_j), with q_K set to B exactly.
// If k0 < 0 it returns the bin k containing v, q_k ≤ v < q_{k+1}, clamped to
// [0, K−1] (so v = B, or any v ≥ q_{K−1}, gives K−1, and v < q_1 gives 0);
// otherwise it returns bin k0. It also returns the bin's knots and
// Σ_{j<k} p_j. Both searches go through the same loop, so the knots of a
// bin are bit-for-bit the same whether it was searched for or named.
func rqsKnots(p []float64, m, bound, v float64, k0 int) (k int, lo, hi, sumLess float64) {
	K := len(p)
	scale := 1 - float64(K)*m
	twoB := 2 * bound
	lo = -bound
	var cum float64
	for k = 0; k < K-1; k++ {
		cum += m + scale*p[k]
		hi = -bound + twoB*cum
		if k == k0 || (k0 < 0 && v < hi) {
			return k, lo, hi, sumLess
		}
		sumLess += p[k]
		lo = hi
	}
	return K - 1, lo, bound, sumLess
}

// slope returns the slope at knot i ∈ [0, K] and its derivative with
// respect to θd_{i−1}: d_0 = d_K = 1 (fixed), and for interior knots
// d_i = md + softplus(min(θd_{i−1} + c₀, rqsMaxSoftplusArg)); the clamp
// bounds slopes by md + rqsMaxSoftplusArg and gives a zero derivative when
// active. A very negative argument gives d_i = md with derivative 0.
func (c SplineConfig) slope(theta []float64, i int, shift float64) (d, dd float64) {
	K := c.Bins
	if i == 0 || i == K {
		return 1, 0
	}
	u := theta[2*K+i-1] + shift
	if u > rqsMaxSoftplusArg {
		return c.MinDerivative + rqsMaxSoftplusArg, 0
	}
	sp, sig := rqsSoftplus(u)
	return c.MinDerivative + sp, sig
}

// rqsSetup normalises θ into p (length ≥ 2K: p[:K] = softmax(θw),
// p[K:2K] = softmax(θh)) and locates the bin containing v, on the x side
// when onX is true and on the y side otherwise, and fills in the bin.
func (c SplineConfig) rqsSetup(theta, p []float64, v float64, onX bool) rqsBin {
	K := c.Bins
	if len(theta) != 3*K-1 {
		panic("flows: spline: len(theta) != 3·Bins−1")
	}
	pw, ph := p[:K:K], p[K:2*K:2*K]
	rqsSoftmax2(p, theta, K)
	b := rqsBin{
		pw: pw, ph: ph,
		scaleW: 1 - float64(K)*c.MinBinWidth,
		scaleH: 1 - float64(K)*c.MinBinHeight,
	}
	if onX {
		b.k, b.xLo, b.xHi, b.sumPLessW = rqsKnots(pw, c.MinBinWidth, c.Bound, v, -1)
		_, b.yLo, b.yHi, b.sumPLessH = rqsKnots(ph, c.MinBinHeight, c.Bound, 0, b.k)
	} else {
		b.k, b.yLo, b.yHi, b.sumPLessH = rqsKnots(ph, c.MinBinHeight, c.Bound, v, -1)
		_, b.xLo, b.xHi, b.sumPLessW = rqsKnots(pw, c.MinBinWidth, c.Bound, 0, b.k)
	}
	b.w = b.xHi - b.xLo
	b.h = b.yHi - b.yLo
	shift := rqsDerivShift(c.MinDerivative)
	b.d0, b.dd0 = c.slope(theta, b.k, shift)
	b.d1, b.dd1 = c.slope(theta, b.k+1, shift)
	return b
}

// rqsDefaultShift is rqsDerivShift(1e-3), the default MinDerivative's shift.
var rqsDefaultShift = math.Log(math.Expm1(1 - 1e-3))

// rqsDerivShift returns c₀ = log(exp(1−md) − 1), so that softplus(c₀) = 1 − md
// and θd = 0 gives slope 1; expm1 keeps it accurate for md close to 1. The
// default md uses a precomputed value (it saves two transcendental calls
// per evaluation).
func rqsDerivShift(md float64) float64 {
	if md == 1e-3 {
		return rqsDefaultShift
	}
	return math.Log(math.Expm1(1 - md))
}

// rqsClamp01 clamps v into [0, 1], mapping NaN to 0.
func rqsClamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// value returns g at the point of the bin with relative positions xi = ξ
// and om = 1 − ξ (both given, for accuracy at either end), together with
// g' = s²G/D² and log g'.
func (b *rqsBin) value(xi, om float64) (y, gp, logDeriv float64) {
	s := b.h / b.w
	t := xi * om
	den := s*(xi*xi+om*om) + (b.d0+b.d1)*t
	if xi <= 0.5 {
		y = b.yLo + b.h*(xi*(s*xi+b.d0*om))/den
	} else {
		y = b.yHi - b.h*(om*(s*om+b.d1*xi))/den
	}
	q := s / den
	gp = q * q * (b.d1*xi*xi + 2*s*t + b.d0*om*om)
	return y, gp, math.Log(gp)
}

// rqsLocal holds the spline and its partial derivatives at one point of a
// bin, in the bin's local coordinates (ξ, s = h/w, d0, d1).
type rqsLocal struct {
	xi, s     float64 // ξ and s
	y, gp, ld float64 // g, g' and ℓ = log g'
	r         float64 // R = N/D, so that g = y_k + h·R
	rXi, rS   float64 // ∂R/∂ξ, ∂R/∂s
	rD0, rD1  float64 // ∂R/∂d0, ∂R/∂d1
	lXi, lS   float64 // ∂ℓ/∂ξ, ∂ℓ/∂s
	lD0, lD1  float64 // ∂ℓ/∂d0, ∂ℓ/∂d1
}

// local evaluates the bin at (ξ, 1−ξ) = (xi, om) with all the partial
// derivatives the pullbacks need. With R = N/D and
// ℓ = log g' = 2 log s + log G − 2 log D (M = D − N, t = ξ(1−ξ)):
//
//	R_ξ  = sG/D²                      ℓ_ξ  = G_ξ/G − 2D_ξ/D
//	R_s  = t(d1ξ² − d0(1−ξ)²)/D²       ℓ_s  = 2/s + 2t/G − 2(ξ²+(1−ξ)²)/D
//	R_d0 = tM/D²                       ℓ_d0 = (1−ξ)²/G − 2t/D
//	R_d1 = −tN/D²                      ℓ_d1 = ξ²/G − 2t/D
//
// with G_ξ = 2(d1ξ + s(1−2ξ) − d0(1−ξ)) and D_ξ = (d0 + d1 − 2s)(1−2ξ).
// (R_s follows from ξ²D − N(1−2t) = t(d1ξ² − d0(1−ξ)²).)
func (b *rqsBin) local(xi, om float64) rqsLocal {
	s := b.h / b.w
	t := xi * om
	e := xi*xi + om*om // = 1 − 2t
	d0, d1 := b.d0, b.d1
	den := s*e + (d0+d1)*t
	num := xi * (s*xi + d0*om) // N: R = N/D
	mum := om * (s*om + d1*xi) // M: 1 − R = M/D
	G := d1*xi*xi + 2*s*t + d0*om*om
	var l rqsLocal
	l.xi, l.s = xi, s
	if xi <= 0.5 {
		l.y = b.yLo + b.h*num/den
	} else {
		l.y = b.yHi - b.h*mum/den
	}
	q := s / den
	l.gp = q * q * G
	l.ld = math.Log(l.gp)

	invD := 1 / den
	invD2 := invD * invD
	invG := 1 / G
	l.r = num * invD
	l.rXi = s * G * invD2
	l.rS = t * (d1*xi*xi - d0*om*om) * invD2
	l.rD0 = t * mum * invD2
	l.rD1 = -t * num * invD2
	tp := om - xi // 1 − 2ξ
	l.lXi = 2*(d1*xi+s*tp-d0*om)*invG - 2*(d0+d1-2*s)*tp*invD
	l.lS = 2/s + 2*t*invG - 2*e*invD
	l.lD0 = om*om*invG - 2*t*invD
	l.lD1 = xi*xi*invG - 2*t*invD
	return l
}

// pullback back-propagates the upstream gradients gy = ∂L/∂g and
// gl = ∂L/∂log g' at the point l of bin b to every θ entry, at fixed x,
// adding them into dtheta, and returns ∂L/∂x. As g = y_k + h·R,
// ξ = (x − x_k)/w and s = h/w, the adjoints of the bin quantities are
//
//	ξ̄ = gy·h·R_ξ + gl·ℓ_ξ,  s̄ = gy·h·R_s + gl·ℓ_s,
//	x̄ = ξ̄/w,  x̄_k = −ξ̄/w,  w̄ = −(ξ̄ξ + s̄s)/w,
//	ȳ_k = gy,  h̄ = gy·R + s̄/w,  d̄0 = gy·h·R_d0 + gl·ℓ_d0,  d̄1 likewise,
//
// and scatter carries them through the cumulative sums and softmaxes.
func (b *rqsBin) pullback(l *rqsLocal, gy, gl float64, dtheta []float64, c SplineConfig) (dx float64) {
	gyh := gy * b.h
	xiBar := gyh*l.rXi + gl*l.lXi
	sBar := gyh*l.rS + gl*l.lS
	invW := 1 / b.w
	xkBar := -xiBar * invW
	wBar := -(xiBar*l.xi + sBar*l.s) * invW
	hBar := gy*l.r + sBar*invW
	d0Bar := gyh*l.rD0 + gl*l.lD0
	d1Bar := gyh*l.rD1 + gl*l.lD1
	b.scatter(dtheta, c, xkBar, wBar, gy, hBar, d0Bar, d1Bar)
	return xiBar * invW
}

// scatter adds to dtheta the gradient with respect to θ given the adjoints
// of the bin's left knots x_k, y_k, its width w, height h and slopes d0, d1.
//
// x_k = −B + 2B·Σ_{j<k} wn_j and w = 2B·wn_k (taking w = x_{k+1} − x_k
// instead, as the code does for the last bin, differs by a multiple of
// Σ_j wn_j = 1, whose gradient through the softmax is zero), so
// a_j = ∂L/∂wn_j = 2B·x̄_k for j < k, 2B·w̄ for j = k and 0 for j > k.
// wn = mw + (1 − K·mw)·p with p = softmax(θw), and the softmax pullback is
// ∂L/∂θw_j = (1 − K·mw)·p_j·(a_j − Σ_i p_i a_i); the same holds for heights.
// Slopes contribute d̄·sigmoid(u) to their own θd entry.
func (b *rqsBin) scatter(dtheta []float64, c SplineConfig, xkBar, wBar, ykBar, hBar, d0Bar, d1Bar float64) {
	K := c.Bins
	if len(dtheta) != 3*K-1 {
		panic("flows: spline: len(dtheta) != 3·Bins−1")
	}
	twoB := 2 * c.Bound
	rqsSoftmaxBack(dtheta[:K], b.pw, b.k, b.scaleW, twoB*xkBar, twoB*wBar, b.sumPLessW)
	rqsSoftmaxBack(dtheta[K:2*K], b.ph, b.k, b.scaleH, twoB*ykBar, twoB*hBar, b.sumPLessH)
	if b.k >= 1 {
		dtheta[2*K+b.k-1] += d0Bar * b.dd0
	}
	if b.k+1 <= K-1 {
		dtheta[2*K+b.k] += d1Bar * b.dd1
	}
}

// rqsSoftmaxBack adds scale·p_j·(a_j − Σ_i p_i a_i) into dst, where a_j is
// aLess for j < k, aK for j = k and 0 for j > k, and sumLess = Σ_{j<k} p_j.
func rqsSoftmaxBack(dst, p []float64, k int, scale, aLess, aK, sumLess float64) {
	mean := aLess*sumLess + aK*p[k]
	for j := range dst {
		var a float64
		switch {
		case j < k:
			a = aLess
		case j == k:
			a = aK
		}
		dst[j] += scale * p[j] * (a - mean)
	}
}

// rqsSolve returns the relative position ξ ∈ [0, 1] at which R(ξ) = r, for a
// bin of slope ratio s with slope dNear at ξ = 0 and dFar at ξ = 1
// (r = (y − y_k)/h ∈ [0, 1]). Multiplying out r·D = N gives
//
//	aξ² + bξ + c = 0,  a = s − b,  b = dNear − r(dNear + dFar − 2s),  c = −s r,
//
// (a + b = s), whose root in [0, 1] is computed without cancellation:
// ξ = 2c/(−b − √disc) when b ≥ 0, ξ = (−b + √disc)/(2a) otherwise (then
// a = s − b > s > 0). The discriminant b² − 4ac, non-negative in exact
// arithmetic, is clamped at 0, and ξ is clamped into [0, 1].
func rqsSolve(r, s, dNear, dFar float64) float64 {
	b := dNear - r*(dNear+dFar-2*s)
	a := s - b
	c := -s * r
	disc := b*b - 4*a*c
	if disc < 0 {
		disc = 0
	}
	sq := math.Sqrt(disc)
	var xi float64
	if b >= 0 {
		xi = 2 * c / (-b - sq)
	} else {
		xi = (-b + sq) / (2 * a)
	}
	return rqsClamp01(xi)
}

// inside reports whether v is in [−B, B]; NaN is not.
func (c SplineConfig) inside(v float64) bool {
	return v >= -c.Bound && v <= c.Bound
}

// scratch returns a slice of 2K float64: buf when it is large enough, a new
// allocation otherwise (only for Bins > rqsStackBins).
func (c SplineConfig) scratch(buf []float64) []float64 {
	if 2*c.Bins <= len(buf) {
		return buf
	}
	return make([]float64, 2*c.Bins)
}

// forwardPos returns (ξ, 1−ξ) for x in bin b, each computed from its own
// knot so that both are accurate, and clamped into [0, 1].
func (b *rqsBin) forwardPos(x float64) (xi, om float64) {
	return rqsClamp01((x - b.xLo) / b.w), rqsClamp01((b.xHi - x) / b.w)
}

// inversePos solves for the position of y in bin b, from the nearer knot
// (reflecting the bin when y is in its upper half, which swaps the slopes),
// and returns (ξ, 1−ξ) and x.
func (b *rqsBin) inversePos(y float64) (xi, om, x float64) {
	s := b.h / b.w
	if lo := y - b.yLo; lo <= 0.5*b.h {
		xi = rqsSolve(rqsClamp01(lo/b.h), s, b.d0, b.d1)
		return xi, 1 - xi, b.xLo + xi*b.w
	}
	om = rqsSolve(rqsClamp01((b.yHi-y)/b.h), s, b.d1, b.d0)
	return 1 - om, om, b.xHi - om*b.w
}

// rqsForward evaluates the spline of one dimension with parameters theta
// (length 3K−1, layout [widths | heights | slopes]) at x and returns
// y = g(x) and logDeriv = log g'(x). Outside [−B, B] it returns (x, 0).
// c must come from withDefaults and pass validate. It does not allocate
// when Bins ≤ 64.
func (c SplineConfig) rqsForward(theta []float64, x float64) (y, logDeriv float64) {
	if !c.inside(x) {
		return x, 0
	}
	var buf [2 * rqsStackBins]float64
	b := c.rqsSetup(theta, c.scratch(buf[:]), x, true)
	xi, om := b.forwardPos(x)
	y, _, logDeriv = b.value(xi, om)
	return y, logDeriv
}

// rqsInverse evaluates the inverse spline: x = g⁻¹(y) and
// logDeriv = log (g⁻¹)'(y) = −log g'(x). Outside [−B, B] it returns (y, 0).
// Same requirements as rqsForward.
func (c SplineConfig) rqsInverse(theta []float64, y float64) (x, logDeriv float64) {
	if !c.inside(y) {
		return y, 0
	}
	var buf [2 * rqsStackBins]float64
	b := c.rqsSetup(theta, c.scratch(buf[:]), y, false)
	xi, om, x := b.inversePos(y)
	_, _, ld := b.value(xi, om)
	return x, -ld
}

// rqsForwardVJP computes y and logDeriv as rqsForward does and the
// pullback of L with ∂L/∂y = gy and ∂L/∂logDeriv = gl: it returns
// dx = ∂L/∂x and ADDS ∂L/∂θ into dtheta (length 3K−1). Outside [−B, B],
// dx = gy and dtheta is untouched. Same requirements as rqsForward.
func (c SplineConfig) rqsForwardVJP(theta []float64, x, gy, gl float64, dtheta []float64) (y, logDeriv, dx float64) {
	if !c.inside(x) {
		return x, 0, gy
	}
	var buf [2 * rqsStackBins]float64
	b := c.rqsSetup(theta, c.scratch(buf[:]), x, true)
	l := b.local(b.forwardPos(x))
	dx = b.pullback(&l, gy, gl, dtheta, c)
	return l.y, l.ld, dx
}

// rqsInverseVJP computes x and logDeriv as rqsInverse does and the
// pullback of L with ∂L/∂x = gx and ∂L/∂logDeriv = gl (gradients through
// sampling): it returns dy = ∂L/∂y and ADDS ∂L/∂θ into dtheta. Outside
// [−B, B], dy = gx and dtheta is untouched. Same requirements as rqsForward.
//
// By the implicit function theorem, with x = g⁻¹(y; θ) and
// logDeriv = −ℓ(x; θ), ℓ = log g':
//
//	∂x/∂y = 1/g',  ∂x/∂θ = −(∂g/∂θ)/g',
//	∂L/∂y = λ,  ∂L/∂θ = −λ·∂g/∂θ − gl·∂ℓ/∂θ,  λ = (gx − gl·∂ℓ/∂x)/g',
//
// where ∂/∂θ is taken at fixed x: that is the forward pullback with
// upstream gradients (−λ, −gl).
func (c SplineConfig) rqsInverseVJP(theta []float64, y, gx, gl float64, dtheta []float64) (x, logDeriv, dy float64) {
	if !c.inside(y) {
		return y, 0, gx
	}
	var buf [2 * rqsStackBins]float64
	b := c.rqsSetup(theta, c.scratch(buf[:]), y, false)
	xi, om, x := b.inversePos(y)
	l := b.local(xi, om)
	// ∂ℓ/∂x = ℓ_ξ/w.
	lambda := (gx - gl*l.lXi/b.w) / l.gp
	b.pullback(&l, -lambda, -gl, dtheta, c)
	return x, -l.ld, lambda
}

// Validate returns an error naming the first field of c that no spline
// takes (too few bins, a bound or minimum out of range), or nil. Zero
// fields are valid: they take defaults.
func (c SplineConfig) Validate() error { return c.validate() }
