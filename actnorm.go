package flows

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// actNormConstTol is the relative threshold under which ActNorm's
// data-dependent initialisation treats a column as constant: a column whose
// (population) standard deviation is at most actNormConstTol·max(1, max|x|)
// gets scale 1. The threshold is relative because the variance of a column of
// equal large values is not exactly zero in floating point (about
// ε·|x| from rounding of the mean), and dividing by such noise would blow up.
const actNormConstTol = 1e-12

// ActNorm returns the init function of Glow's activation normalisation: a
// per-dimension affine map with a data-dependent initialisation.
//
// Each row x maps to
//
//	z_j = (x_j − bias_j)·exp(−logScale_j)
//
// so that bias is a location and exp(logScale) a scale of the data (bias is
// the mean and exp(logScale) the standard deviation after InitFromData). The
// per-row log-determinant of Direct is −Σ_j logScale_j; Inverse computes
// x_j = z_j·exp(logScale_j) + bias_j with log-determinant +Σ_j logScale_j.
//
// Parameter layout (2·dim entries):
//
//	[logScale (dim) | bias (dim)]
//
// The initial parameters are all zero (the identity map); the key is not
// used. The Bijection's InitFromData field sets, from a batch of at least
// one row, bias to each column's mean and logScale to the log of each column's
// population standard deviation (divisor n), so that the batch maps to
// columns of mean 0 and variance 1. A column that is constant (standard
// deviation at most 1e-12·max(1, max|x|) over that column) gets logScale 0,
// scale 1, and maps to (about) zero. Call it through the package function
// InitFromData on a Flow.
//
// It returns an error when dim < 1.
func ActNorm() InitFunc {
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		if dim < 1 {
			return nil, Bijection{}, fmt.Errorf("flows: ActNorm: dim must be at least 1, got %d", dim)
		}
		a := actNorm{dim: dim}
		b := layerPass(a.pass).bijection()
		b.InitFromData = a.initFromData
		return make(Params, 2*dim), b, nil
	}
}

// actNorm is ActNorm's shape; its methods are the Bijection's functions.
type actNorm struct{ dim int }

const actNormWho = "ActNorm"

// split returns the two halves of the parameter (or gradient) vector.
func (a actNorm) split(p Params) (logScale, bias []float64) {
	d := a.dim
	return p[:d:d], p[d : 2*d : 2*d]
}

// pass computes Direct, z = (x − bias)·exp(−logScale) with log-det
// −Σ_j logScale_j, or, when inverse, Inverse, x = z·exp(logScale) + bias
// with log-det +Σ_j logScale_j, and, when vjp, the pullback: Direct's is
// colaffine.go's inverse form with θ = logScale and h = a private copy of
// z, Inverse's the direct form with ∂L/∂θ = Σ_i (g·e^{s})·z (scaledIn, h
// a private copy of z).
func (a actNorm) pass(p Params, in, _ *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	checkWidth(actNormWho, in, a.dim)
	checkParams(actNormWho, p, 2*a.dim)
	logScale, bias := a.split(p)
	f := make([]float64, a.dim)
	var ld float64
	for j, s := range logScale {
		if inverse {
			f[j] = math.Exp(s)
			ld += s
		} else {
			f[j] = math.Exp(-s)
			ld -= s
		}
	}
	m := colAffine{sub: bias, mul: f}
	if inverse {
		m = colAffine{mul: f, add: bias}
	}
	out, n := m.apply(in)
	lds := repeatedLogDet(n, ld)
	if !vjp {
		return mat.NewDense(n, a.dim, out), lds, nil
	}
	v := scaleShiftVJP{f: f, h: slices.Clone(out), inverse: true}
	if inverse {
		zs, _, _ := rawRows(in)
		v = scaleShiftVJP{f: f, h: slices.Clone(zs), scaledIn: true}
	}
	back := func(g *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(actNormWho, g, dLogDet, dp, nil, n, a.dim, 2*a.dim, 0)
		dLogScale, dBias := a.split(dp)
		return v.back(g, dLogDet, dLogScale, dBias)
	}
	return mat.NewDense(n, a.dim, out), lds, back
}

// initFromData sets bias to each column's mean and logScale to the log of
// its population standard deviation (0 for a constant column) and returns
// Direct(p, x).
func (a actNorm) initFromData(p Params, x, _ *mat.Dense) *mat.Dense {
	if x != nil && x.IsEmpty() {
		panic("flows: ActNorm: InitFromData needs a batch of at least one row")
	}
	checkWidth(actNormWho, x, a.dim)
	checkParams(actNormWho, p, 2*a.dim)
	xs, n, _ := rawRows(x)
	logScale, bias := a.split(p)
	mean, ss := columnMoments(xs, n, a.dim)
	maxAbs := make([]float64, a.dim)
	for i := range n {
		for j, v := range xs[i*a.dim : (i+1)*a.dim] {
			maxAbs[j] = math.Max(maxAbs[j], math.Abs(v))
		}
	}
	for j := range ss {
		std := math.Sqrt(ss[j] / float64(n))
		bias[j] = mean[j]
		if std <= actNormConstTol*math.Max(1, maxAbs[j]) {
			logScale[j] = 0
		} else {
			logScale[j] = math.Log(std)
		}
	}
	z, _, _ := a.pass(p, x, nil, false, false)
	return z
}

// columnMoments returns the mean of each column of the n×d rows xs and
// the sum of its squared deviations from it, in two passes (mean, then
// deviations) for accuracy.
func columnMoments(xs []float64, n, d int) (mean, ss []float64) {
	mean, ss = make([]float64, d), make([]float64, d)
	for i := range n {
		for j, v := range xs[i*d : (i+1)*d] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j, v := range xs[i*d : (i+1)*d] {
			c := v - mean[j]
			ss[j] += c * c
		}
	}
	return mean, ss
}
