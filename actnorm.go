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
		return make(Params, 2*dim), Bijection{
			Direct:       a.direct,
			Inverse:      a.inverse,
			DirectVJP:    a.directVJP,
			InverseVJP:   a.inverseVJP,
			InitFromData: a.initFromData,
		}, nil
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

// forward computes z = (x − bias)·exp(−logScale) and returns it with its
// map (whose factor is exp(−logScale)) and log-det.
func (a actNorm) forward(p Params, x *mat.Dense) (z []float64, n int, m colAffine, ld float64) {
	checkWidth(actNormWho, x, a.dim)
	checkParams(actNormWho, p, 2*a.dim)
	logScale, bias := a.split(p)
	inv := make([]float64, a.dim)
	for j, s := range logScale {
		inv[j] = math.Exp(-s)
		ld -= s
	}
	m = colAffine{sub: bias, mul: inv}
	z, n = m.apply(x)
	return z, n, m, ld
}

// backward computes x = z·exp(logScale) + bias and returns it with its
// map (whose factor is exp(logScale)) and log-det.
func (a actNorm) backward(p Params, z *mat.Dense) (x []float64, n int, m colAffine, ld float64) {
	checkWidth(actNormWho, z, a.dim)
	checkParams(actNormWho, p, 2*a.dim)
	logScale, bias := a.split(p)
	scale := make([]float64, a.dim)
	for j, s := range logScale {
		scale[j] = math.Exp(s)
		ld += s
	}
	m = colAffine{mul: scale, add: bias}
	x, n = m.apply(z)
	return x, n, m, ld
}

func (a actNorm) direct(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
	z, n, _, ld := a.forward(p, x)
	return mat.NewDense(n, a.dim, z), repeatedLogDet(n, ld)
}

func (a actNorm) inverse(p Params, z, _ *mat.Dense) (*mat.Dense, []float64) {
	x, n, _, ld := a.backward(p, z)
	return mat.NewDense(n, a.dim, x), repeatedLogDet(n, ld)
}

// directVJP: z = (x − b)·e^{−s}, logDet = −Σ_j s_j, the inverse form of
// colaffine.go's pullback with θ = s and h = z (a private copy, so the
// caller may modify the returned batch).
func (a actNorm) directVJP(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
	z, n, m, ld := a.forward(p, x)
	v := scaleShiftVJP{f: m.mul, h: slices.Clone(z), inverse: true}
	return mat.NewDense(n, a.dim, z), repeatedLogDet(n, ld), a.pullback(v, n)
}

// inverseVJP: x = z·e^{s} + b, logDet = +Σ_j s_j, the direct form with
// ∂L/∂s = Σ_i (g·e^{s})·z + Λ (h = a private copy of z).
func (a actNorm) inverseVJP(p Params, z, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
	checkWidth(actNormWho, z, a.dim)
	zs, _, _ := rawRows(z)
	zk := slices.Clone(zs)
	x, n, m, ld := a.backward(p, z)
	v := scaleShiftVJP{f: m.mul, h: zk, scaledIn: true}
	return mat.NewDense(n, a.dim, x), repeatedLogDet(n, ld), a.pullback(v, n)
}

// pullback checks a pullback's arguments and runs v on them.
func (a actNorm) pullback(v scaleShiftVJP, n int) Pullback {
	return func(g *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(actNormWho, g, dLogDet, dp, nil, n, a.dim, 2*a.dim, 0)
		dLogScale, dBias := a.split(dp)
		return v.back(g, dLogDet, dLogScale, dBias)
	}
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
	z, _ := a.direct(p, x, nil)
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
