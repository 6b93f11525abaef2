package flows

import (
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// FixedInvertibleLinear returns the init function of a fixed (untrained)
// random rotation or reflection of the rows:
//
//	z = x·W,  x = z·Wᵀ
//
// where W is a dim×dim orthogonal matrix drawn at init from key, uniformly
// from the orthogonal group (Haar measure): W is the Q factor of the QR
// decomposition of a matrix of independent standard normal entries, with
// each column of Q multiplied by the sign of the matching diagonal entry of
// R, which makes the factorisation unique and the draw exactly uniform
// (Mezzadri 2007, "How to generate random matrices from the classical
// compact groups"). The same key gives the same W, bit for bit. Between
// coupling layers it mixes all coordinates, a dense alternative to Reverse
// and Shuffle.
//
// It has no parameters (the parameter vector is empty): W is held by the
// returned Bijection and is never trained. Parameter layout: [] (0 entries).
//
// The log-determinant is 0 in both directions: |det W| = 1 for an
// orthogonal matrix. The W actually stored is orthogonal to rounding
// (‖WᵀW − I‖ is a few multiples of dim·2⁻⁵³), so its true log|det W|, and
// the error of using Wᵀ as its inverse, are of that order, far below any
// tolerance a density needs. Inverse multiplies by Wᵀ; DirectVJP and
// InverseVJP are provided. There is no data-dependent initialisation.
//
// Each call costs about 2·n·dim² flops. It returns an error when dim < 1.
func FixedInvertibleLinear() InitFunc {
	return func(key Key, dim, _ int) (Params, Bijection, error) {
		const who = "FixedInvertibleLinear"
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		w := fixedLinOrthogonal(key, dim)

		// apply returns m·W (transpose false) or m·Wᵀ (transpose true) as a
		// new batch, with a zero log-det.
		apply := func(p Params, m *mat.Dense, transpose bool) (*mat.Dense, []float64) {
			checkWidth(who, m, dim)
			checkParams(who, p, 0)
			ms, n, _ := rawRows(m)
			out := make([]float64, n*dim)
			linalg.Gemm(false, transpose, n, dim, dim, 1, ms, w, 0, out)
			return mat.NewDense(n, dim, out), make([]float64, n)
		}

		// vjp returns the pullback of apply(·, transpose). The map is linear
		// with a constant log-det, so for out = in·M (M = W or Wᵀ)
		//   ∂L/∂in = ∂L/∂out·Mᵀ
		// and the log-det gradient contributes nothing. It needs nothing
		// from the forward pass.
		vjp := func(n int, transpose bool) Pullback {
			return func(dout *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkPullback(who, dout, dLogDet, dp, nil, n, dim, 0, 0)
				g, _, _ := rawRows(dout)
				din := make([]float64, n*dim)
				linalg.Gemm(false, !transpose, n, dim, dim, 1, g, w, 0, din)
				return mat.NewDense(n, dim, din)
			}
		}

		return Params{}, Bijection{
			Direct:  func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) { return apply(p, x, false) },
			Inverse: func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64) { return apply(p, z, true) },
			DirectVJP: func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
				z, ld := apply(p, x, false)
				n, _ := z.Dims()
				return z, ld, vjp(n, false)
			},
			InverseVJP: func(p Params, z, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
				x, ld := apply(p, z, true)
				n, _ := x.Dims()
				return x, ld, vjp(n, true)
			},
		}, nil
	}
}

// gaussianQR returns the Q factor and R's diagonal of the QR decomposition
// of a dim×dim matrix of independent standard normal entries drawn from
// key: the one draw of a random orthogonal matrix that FixedInvertibleLinear
// (with the sign correction) and InvertibleLinear (without) start from.
func gaussianQR(key Key, dim int) (q *mat.Dense, rdiag []float64) {
	rng := key.Rand()
	g := mat.NewDense(dim, dim, nil)
	for i := 0; i < dim; i++ {
		for j := 0; j < dim; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	q = new(mat.Dense)
	qr.QTo(q)
	var r mat.Dense
	qr.RTo(&r)
	rdiag = make([]float64, dim)
	for j := range rdiag {
		rdiag[j] = r.At(j, j)
	}
	return q, rdiag
}

// fixedLinOrthogonal draws a dim×dim orthogonal matrix from the Haar measure,
// row-major: Q·diag(sign(diag R)) for gaussianQR's factors. Without the sign
// correction the distribution of Q depends on the QR routine's sign
// convention and is not uniform.
func fixedLinOrthogonal(key Key, dim int) []float64 {
	q, rdiag := gaussianQR(key, dim)
	w := make([]float64, dim*dim)
	for j := 0; j < dim; j++ {
		// A zero diagonal entry has probability zero; keep the column then.
		s := 1.0
		if rdiag[j] < 0 {
			s = -1
		}
		for i := 0; i < dim; i++ {
			w[i*dim+j] = s * q.At(i, j)
		}
	}
	return w
}
