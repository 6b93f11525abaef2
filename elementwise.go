package flows

// The parameter-free elementwise maps Sigmoid and Logit, and the layer
// over one scalar map per column (elementwise) that they and Bounded share.
//
// Sigmoid's per-row log-determinant is
//
//	Σ_j log σ(x_j)(1 − σ(x_j)) = Σ_j −softplus(−x_j) − softplus(x_j),
//
// computed in the second form, which is exact and finite for every finite
// x (at x = ±40 it is −40 − 2·log1p(e⁻⁴⁰), where the first form would be
// log 0 = −Inf).
//
// Sigmoid clips z to [δ, 1−δ] with δ = LogitClip = 2⁻⁴⁰ ≈ 9.09e-13, that is
// for |x| > log((1−δ)/δ) ≈ 27.726, so that its Inverse (and any Logit after
// it) stays finite; without the clip σ(x) rounds to exactly 1 for x > 36.7
// and its inverse would be +Inf. The log-det is still the exact one of the
// unclipped x (so the density of a flow stays right far out), and its
// gradient is the exact σ(−x) − σ(x); the gradient of a clipped z with
// respect to x is zero, the derivative of the clipped map. The round trip
// Inverse(Direct(x)) loses accuracy as |x| grows, independently of the
// clip: σ(x) near 1 carries an absolute rounding error of up to about
// 1e-16, which the inverse magnifies by about e^{|x|} (an error of about
// 1e-9 at |x| = 16), and a clipped x comes back as ±27.726.

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// LogitClip is the clipping margin δ = 2⁻⁴⁰ ≈ 9.09e-13 of Sigmoid and
// Logit: Logit clips its input, and Sigmoid its output, to [δ, 1−δ]. A power
// of two is used so that 1 − δ is exact in float64 and the clipping is
// exactly symmetric (logit(1 − δ) = −logit(δ)); 1 − 1e-12 would round to
// 1 − 1.0000889e-12. Logit's output then lies in [−27.7259, 27.7259]
// (±log((1−δ)/δ) = ±40·log 2), its derivative is at most about 1.1e12 and
// its log-det at most about 55.45, so nothing downstream overflows, while
// inputs in [δ, 1−δ] are left alone.
const LogitClip = 0x1p-40

// Sigmoid returns the init function of the elementwise logistic sigmoid,
// z_j = σ(x_j) = 1/(1 + e^{−x_j}), which maps the real line onto the unit
// interval; its inverse is Logit. It has no parameters (layout: [], 0
// entries). Use it as the last layer of a stack to model data on (0, 1)ᵈ,
// or as Invert(Logit()).
//
// The per-row log-det, Σ_j log σ(x_j)(1 − σ(x_j)), is exact and finite for
// every finite x. z is clipped to [δ, 1−δ] (δ = LogitClip), that is for
// |x| > 27.726, so that Inverse stays finite; the log-det stays the
// unclipped x's, and the gradient of a clipped z with respect to x is zero.
// The round trip Inverse(Direct(x)) loses accuracy as |x| grows (about 1e-9
// at |x| = 16), and a clipped x comes back as ±27.726 (the formulas and
// numerics are in elementwise.go's file comment).
//
// Inverse is the logit map, with Logit's clipping of its input and its
// log-det. NaN inputs give NaN outputs. DirectVJP and InverseVJP are
// provided; there is no data-dependent initialisation.
func Sigmoid() InitFunc {
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		if err := checkDim("Sigmoid", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		return Params{}, elementwise("Sigmoid", dim, sameMap(sigmoidMap, dim), sameMap(logitMap, dim)), nil
	}
}

// Logit returns the init function of the elementwise logit map,
//
//	z_j = log(x_j/(1 − x_j)),
//
// the inverse of Sigmoid, which maps the unit interval onto the real line:
// the usual first layer for data on (0, 1)ᵈ (as with dequantised images in
// RealNVP's preprocessing). It has no parameters (layout: [], 0 entries).
//
// The per-row log-determinant of Direct is Σ_j −log x_j − log(1 − x_j)
// (computed with log1p).
//
// Clipping: each input is first clipped to [δ, 1−δ] with
// δ = LogitClip = 2⁻⁴⁰ ≈ 9.09e-13, so that values at or beyond 0 and 1 (including
// ±Inf) give finite results, never NaN or Inf: Logit maps 0, −1 and −Inf to
// log(δ/(1−δ)) ≈ −27.726 and 1, 2 and +Inf to +27.726. The output, the
// log-det (at most ≈ 55.45) and their gradients are those of the clipped
// point, and the gradient to a clipped input is zero. NaN inputs are not
// clipped: they give NaN outputs, so that bad data shows up.
//
// Inverse is the sigmoid map, with Sigmoid's clipping of its output and its
// exact log-det. DirectVJP and InverseVJP are provided; there is no
// data-dependent initialisation.
func Logit() InitFunc {
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		if err := checkDim("Logit", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		return Params{}, elementwise("Logit", dim, sameMap(logitMap, dim), sameMap(sigmoidMap, dim)), nil
	}
}

// elemMap is a parameter-free elementwise bijection of one entry: it returns
// the output y, the entry's log|dy/dx| term ld, the derivative dy/dx and the
// derivative of ld with respect to x.
type elemMap func(x float64) (y, ld, dy, dld float64)

// sigmoidMap is the clipped sigmoid (see Sigmoid).
func sigmoidMap(x float64) (y, ld, dy, dld float64) {
	s, t := elemSigmoid(x), elemSigmoid(-x) // σ(x) and 1 − σ(x), each accurate
	// log σ(x)σ(−x) = −softplus(−x) − softplus(x); its derivative is
	// σ(−x) − σ(x).
	ld = -elemSoftplus(-x) - elemSoftplus(x)
	dld = t - s
	switch {
	case s < LogitClip:
		return LogitClip, ld, 0, dld
	case s > 1-LogitClip:
		return 1 - LogitClip, ld, 0, dld
	}
	// dσ/dx = σ(x)σ(−x).
	return s, ld, s * t, dld
}

// logitMap is the clipped logit (see Logit).
func logitMap(u float64) (y, ld, dy, dld float64) {
	clipped := false
	switch {
	case u < LogitClip:
		u, clipped = LogitClip, true
	case u > 1-LogitClip:
		u, clipped = 1-LogitClip, true
	}
	lu, l1u := math.Log(u), math.Log1p(-u) // log u, log(1 − u)
	y = lu - l1u
	ld = -lu - l1u
	if clipped {
		return y, ld, 0, 0
	}
	// dy/du = 1/u + 1/(1 − u) = 1/(u(1 − u)), and
	// d/du (−log u − log(1 − u)) = −1/u + 1/(1 − u) = (2u − 1)/(u(1 − u)).
	q := 1 / (u * (1 - u))
	return y, ld, q, (2*u - 1) * q
}

// elemSigmoid is σ(x) = 1/(1 + e^{−x}), evaluated without overflow and with
// full relative accuracy in both tails.
func elemSigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// elemSoftplus is softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}),
// evaluated without overflow.
func elemSoftplus(x float64) float64 {
	return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
}

// sameMap returns dim copies of f, for elementwise.
func sameMap(f elemMap, dim int) []elemMap {
	fs := make([]elemMap, dim)
	for j := range fs {
		fs[j] = f
	}
	return fs
}

// elementwise builds the Bijection whose Direct applies fwd[j] and whose
// Inverse applies inv[j] to every entry of column j, with the log-det the
// row sum of the entries' terms.
func elementwise(who string, dim int, fwd, inv []elemMap) Bijection {
	// run applies f to every entry of m; with keep it also returns the
	// derivatives dy and dld, entry by entry, for a pullback.
	run := func(f []elemMap, p Params, m *mat.Dense, keep bool) (out *mat.Dense, logDet, dy, dld []float64) {
		checkWidth(who, m, dim)
		checkParams(who, p, 0)
		xs, n, _ := rawRows(m)
		ys := make([]float64, n*dim)
		logDet = make([]float64, n)
		if keep {
			dy, dld = make([]float64, n*dim), make([]float64, n*dim)
		}
		for i := 0; i < n; i++ {
			var s float64
			for j := i * dim; j < (i+1)*dim; j++ {
				y, ld, d, dl := f[j-i*dim](xs[j])
				ys[j] = y
				s += ld
				if keep {
					dy[j], dld[j] = d, dl
				}
			}
			logDet[i] = s
		}
		return mat.NewDense(n, dim, ys), logDet, dy, dld
	}
	vjp := func(f []elemMap, p Params, m *mat.Dense) (*mat.Dense, []float64, Pullback) {
		out, logDet, dy, dld := run(f, p, m, true)
		n := len(logDet)
		back := func(g *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
			checkPullback(who, g, dLogDet, dp, nil, n, dim, 0, 0)
			gs, _, _ := rawRows(g)
			// y_ij = f(x_ij) and logDet_i = Σ_j ld(x_ij), so
			//   ∂L/∂x_ij = g_ij·f′(x_ij) + dLogDet_i·ld′(x_ij).
			dx := make([]float64, n*dim)
			for i := 0; i < n; i++ {
				for j := i * dim; j < (i+1)*dim; j++ {
					dx[j] = elemSum2(gs[j], dy[j], dLogDet[i], dld[j])
				}
			}
			return mat.NewDense(n, dim, dx)
		}
		return out, logDet, back
	}
	return Bijection{
		Direct: func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _, _ := run(fwd, p, x, false)
			return z, ld
		},
		Inverse: func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _, _ := run(inv, p, z, false)
			return x, ld
		},
		DirectVJP:  func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) { return vjp(fwd, p, x) },
		InverseVJP: func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64, Pullback) { return vjp(inv, p, z) },
	}
}

// elemSum2 is a·b + c·d, with the products scaled down by 2⁻⁶⁴ and the sum
// back up when they overflow with opposite signs: a derivative capped at
// ±MaxFloat64 (Bounded's 1/(x − lo) next to a bound) then gives a finite
// or infinite gradient, never Inf − Inf = NaN. NaN inputs stay NaN.
func elemSum2(a, b, c, d float64) float64 {
	s := a*b + c*d
	if s == s {
		return s
	}
	const k = 0x1p-64
	return ((a*k)*b + (c*k)*d) / k
}
