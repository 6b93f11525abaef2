package flows

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Standardize returns the init function of a fixed elementwise affine
// bijection that standardises each column:
//
//	z_j = (x_j − mean_j) / scale_j,   logDet = −Σ_j log scale_j
//
// and Inverse x_j = z_j·scale_j + mean_j with logDet = +Σ_j log scale_j.
// It has no parameters (the parameter vector is empty, layout []): mean and
// scale are fixed when Standardize is called and never trained. The slices
// are copied, so the caller may reuse them. Put it first in a flow so that
// the trained layers see data of about unit scale; StandardizeFrom computes
// mean and scale from a batch.
//
// DirectVJP and InverseVJP are provided; there is no data-dependent
// initialisation. Init returns an error when len(mean) or len(scale)
// differs from dim, when a mean is not finite, or when a scale is not
// positive and finite. The functions panic for a batch without dim columns
// or a non-empty parameter vector.
func Standardize(mean, scale []float64) InitFunc {
	mean, scale = slices.Clone(mean), slices.Clone(scale)
	return func(_ Key, dim int) (Params, Bijection, error) {
		const who = "Standardize"
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if len(mean) != dim || len(scale) != dim {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d means and %d scales for dimension %d", who, len(mean), len(scale), dim)
		}
		logScale := 0.0
		for j := range dim {
			if math.IsNaN(mean[j]) || math.IsInf(mean[j], 0) {
				return nil, Bijection{}, fmt.Errorf("flows: %s: mean %d is %v, want a finite number", who, j, mean[j])
			}
			if !(scale[j] > 0) || math.IsInf(scale[j], 1) {
				return nil, Bijection{}, fmt.Errorf("flows: %s: scale %d is %v, want a positive finite number", who, j, scale[j])
			}
			logScale += math.Log(scale[j])
		}

		// apply maps m elementwise: (m − mean)/scale, or m·scale + mean
		// when inverse; its log-det is ∓Σ log scale for every row.
		apply := func(p Params, m *mat.Dense, inverse bool) (*mat.Dense, []float64) {
			checkParams(who, p, 0)
			checkWidth(who, m, dim)
			n, _ := m.Dims()
			out := mat.NewDense(n, dim, nil)
			ld := -logScale
			if inverse {
				ld = logScale
			}
			lds := make([]float64, n)
			for i := range n {
				src, dst := m.RawRowView(i), out.RawRowView(i)
				for j, v := range src {
					if inverse {
						dst[j] = v*scale[j] + mean[j]
					} else {
						dst[j] = (v - mean[j]) / scale[j]
					}
				}
				lds[i] = ld
			}
			return out, lds
		}

		// vjp is the pullback of apply: the map is elementwise linear with
		// slope 1/scale (Direct) or scale (Inverse) and a constant log-det,
		// so dL/din = dL/dout · slope and the log-det term adds nothing.
		vjp := func(n int, inverse bool) Pullback {
			return func(dout *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
				checkPullback(who, dout, dLogDet, dp, n, dim, 0)
				din := mat.NewDense(n, dim, nil)
				for i := range n {
					src, dst := dout.RawRowView(i), din.RawRowView(i)
					for j, g := range src {
						if inverse {
							dst[j] = g * scale[j]
						} else {
							dst[j] = g / scale[j]
						}
					}
				}
				return din
			}
		}

		return Params{}, Bijection{
			Direct:  func(p Params, x *mat.Dense) (*mat.Dense, []float64) { return apply(p, x, false) },
			Inverse: func(p Params, z *mat.Dense) (*mat.Dense, []float64) { return apply(p, z, true) },
			DirectVJP: func(p Params, x *mat.Dense) (*mat.Dense, []float64, Pullback) {
				z, ld := apply(p, x, false)
				return z, ld, vjp(len(ld), false)
			},
			InverseVJP: func(p Params, z *mat.Dense) (*mat.Dense, []float64, Pullback) {
				x, ld := apply(p, z, true)
				return x, ld, vjp(len(ld), true)
			},
		}, nil
	}
}

// StandardizeFrom returns the column means and population standard
// deviations (divisor n) of the rows of x, for Standardize. A column that is
// constant, with standard deviation at most 1e-12·max(1, max|x_j|) (the
// threshold ActNorm uses, since rounding leaves a constant column's computed
// deviation slightly above zero), gets scale 1. The sums are scaled by each
// column's largest magnitude, so finite data never overflows to an infinite
// mean or scale.
//
// It returns an error for a nil or empty x, and for a NaN or ±Inf entry,
// naming its row and column (counting from 0).
func StandardizeFrom(x *mat.Dense) (mean, scale []float64, err error) {
	if x == nil || x.IsEmpty() {
		return nil, nil, fmt.Errorf("flows: StandardizeFrom: no data")
	}
	n, dim := x.Dims()
	big := make([]float64, dim) // max |x_j| per column
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("flows: StandardizeFrom: row %d, column %d is %v", i, j, v)
			}
			big[j] = max(big[j], math.Abs(v))
		}
	}
	mean = make([]float64, dim)
	scale = make([]float64, dim)
	for j := range dim {
		s := big[j]
		if s == 0 {
			scale[j] = 1 // an all-zero column
			continue
		}
		// Work with u = x/s ∈ [−1, 1], so no sum can overflow.
		sum := 0.0
		for i := range n {
			sum += x.At(i, j) / s
		}
		mu := sum / float64(n)
		ss := 0.0
		for i := range n {
			d := x.At(i, j)/s - mu
			ss += d * d
		}
		mean[j] = mu * s
		sd := math.Sqrt(ss/float64(n)) * s
		if sd <= actNormConstTol*max(1, s) {
			sd = 1
		}
		scale[j] = sd
	}
	return mean, scale, nil
}
