package flows

import (
	"fmt"
	"math"

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
		const who = "ActNorm"
		np := 2 * dim

		// split returns the two halves of the parameter vector.
		split := func(p Params) (logScale, bias []float64) {
			return p[:dim:dim], p[dim:np:np]
		}

		// forward computes z = (x − bias)·exp(−logScale) into a new batch
		// and returns it with the factors exp(−logScale) it used.
		forward := func(p Params, x *mat.Dense) (z []float64, n int, inv []float64, ld float64) {
			checkWidth(who, x, dim)
			checkParams(who, p, np)
			logScale, bias := split(p)
			xs, n, _ := rawRows(x)
			inv = make([]float64, dim)
			for j, s := range logScale {
				inv[j] = math.Exp(-s)
				ld -= s
			}
			z = make([]float64, n*dim)
			for i := 0; i < n; i++ {
				xr, zr := xs[i*dim:(i+1)*dim], z[i*dim:(i+1)*dim]
				for j := range zr {
					zr[j] = (xr[j] - bias[j]) * inv[j]
				}
			}
			return z, n, inv, ld
		}

		// backward computes x = z·exp(logScale) + bias into a new batch and
		// returns it with the factors exp(logScale) it used.
		backward := func(p Params, z *mat.Dense) (x []float64, n int, scale []float64, ld float64) {
			checkWidth(who, z, dim)
			checkParams(who, p, np)
			logScale, bias := split(p)
			zs, n, _ := rawRows(z)
			scale = make([]float64, dim)
			for j, s := range logScale {
				scale[j] = math.Exp(s)
				ld += s
			}
			x = make([]float64, n*dim)
			for i := 0; i < n; i++ {
				zr, xr := zs[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim]
				for j := range xr {
					xr[j] = zr[j]*scale[j] + bias[j]
				}
			}
			return x, n, scale, ld
		}

		direct := func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
			z, n, _, ld := forward(p, x)
			return mat.NewDense(n, dim, z), repeatedLogDet(n, ld)
		}

		inverse := func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64) {
			x, n, _, ld := backward(p, z)
			return mat.NewDense(n, dim, x), repeatedLogDet(n, ld)
		}

		directVJP := func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
			z, n, inv, ld := forward(p, x)
			// The pullback keeps its own copy of z, so the caller may
			// modify the returned batch.
			zk := append([]float64(nil), z...)
			back := func(dz *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkPullback(who, dz, dLogDet, dp, nil, n, dim, np, 0)
				g, _, _ := rawRows(dz)
				dLogScale, dBias := split(dp)
				// z_ij = (x_ij − b_j)·e^{−s_j} and logDet_i = −Σ_j s_j, so
				//   ∂L/∂x_ij = g_ij·e^{−s_j}
				//   ∂L/∂b_j  = −Σ_i g_ij·e^{−s_j}
				//   ∂L/∂s_j  = −Σ_i g_ij·z_ij − Σ_i dLogDet_i
				// (∂z_ij/∂s_j = −z_ij).
				dx := make([]float64, n*dim)
				var sumLD float64
				for _, v := range dLogDet {
					sumLD += v
				}
				for j := range dLogScale {
					dLogScale[j] -= sumLD
				}
				for i := 0; i < n; i++ {
					gr, zr, dxr := g[i*dim:(i+1)*dim], zk[i*dim:(i+1)*dim], dx[i*dim:(i+1)*dim]
					for j := range dxr {
						d := gr[j] * inv[j]
						dxr[j] = d
						dBias[j] -= d
						dLogScale[j] -= gr[j] * zr[j]
					}
				}
				return mat.NewDense(n, dim, dx)
			}
			return mat.NewDense(n, dim, z), repeatedLogDet(n, ld), back
		}

		inverseVJP := func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
			checkWidth(who, z, dim)
			// The pullback needs z itself; keep a private copy.
			zs, _, _ := rawRows(z)
			zk := append([]float64(nil), zs...)
			x, n, scale, ld := backward(p, z)
			back := func(dx *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkPullback(who, dx, dLogDet, dp, nil, n, dim, np, 0)
				g, _, _ := rawRows(dx)
				dLogScale, dBias := split(dp)
				// x_ij = z_ij·e^{s_j} + b_j and logDet_i = +Σ_j s_j, so
				//   ∂L/∂z_ij = g_ij·e^{s_j}
				//   ∂L/∂b_j  = Σ_i g_ij
				//   ∂L/∂s_j  = Σ_i g_ij·z_ij·e^{s_j} + Σ_i dLogDet_i.
				dz := make([]float64, n*dim)
				var sumLD float64
				for _, v := range dLogDet {
					sumLD += v
				}
				for j := range dLogScale {
					dLogScale[j] += sumLD
				}
				for i := 0; i < n; i++ {
					gr, zr, dzr := g[i*dim:(i+1)*dim], zk[i*dim:(i+1)*dim], dz[i*dim:(i+1)*dim]
					for j := range dzr {
						d := gr[j] * scale[j]
						dzr[j] = d
						dBias[j] += gr[j]
						dLogScale[j] += d * zr[j]
					}
				}
				return mat.NewDense(n, dim, dz)
			}
			return mat.NewDense(n, dim, x), repeatedLogDet(n, ld), back
		}

		initFromData := func(p Params, x, _ *mat.Dense) *mat.Dense {
			if x != nil && x.IsEmpty() {
				panic("flows: ActNorm: InitFromData needs a batch of at least one row")
			}
			checkWidth(who, x, dim)
			checkParams(who, p, np)
			xs, n, _ := rawRows(x)
			logScale, bias := split(p)
			// Two passes (mean, then squared deviations) for accuracy.
			mean := make([]float64, dim)
			maxAbs := make([]float64, dim)
			for i := 0; i < n; i++ {
				for j, v := range xs[i*dim : (i+1)*dim] {
					mean[j] += v
					maxAbs[j] = math.Max(maxAbs[j], math.Abs(v))
				}
			}
			for j := range mean {
				mean[j] /= float64(n)
			}
			variance := make([]float64, dim)
			for i := 0; i < n; i++ {
				for j, v := range xs[i*dim : (i+1)*dim] {
					d := v - mean[j]
					variance[j] += d * d
				}
			}
			for j := range variance {
				std := math.Sqrt(variance[j] / float64(n))
				bias[j] = mean[j]
				if std <= actNormConstTol*math.Max(1, maxAbs[j]) {
					logScale[j] = 0
				} else {
					logScale[j] = math.Log(std)
				}
			}
			z, _ := direct(p, x, nil)
			return z
		}

		return make(Params, np), Bijection{
			Direct:       direct,
			Inverse:      inverse,
			DirectVJP:    directVJP,
			InverseVJP:   inverseVJP,
			InitFromData: initFromData,
		}, nil
	}
}

// repeatedLogDet returns a new slice of n copies of v: the per-row
// log-determinant of a layer whose Jacobian does not depend on the row.
func repeatedLogDet(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
