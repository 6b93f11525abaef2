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
// the trained layers see data of about unit scale; prep.StandardizeFrom computes
// mean and scale from a batch.
//
// DirectVJP and InverseVJP are provided; there is no data-dependent
// initialisation. Init returns an error when len(mean) or len(scale)
// differs from dim, when a mean is not finite, or when a scale is not
// positive and finite. The functions panic for a batch without dim columns
// or a non-empty parameter vector.
func Standardize(mean, scale []float64) InitFunc {
	mean, scale = slices.Clone(mean), slices.Clone(scale)
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		const who = "Standardize"
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if len(mean) != dim || len(scale) != dim {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d means and %d scales for dimension %d", who, len(mean), len(scale), dim)
		}
		f, err := newFixedAffine(who, mean, scale)
		if err != nil {
			return nil, Bijection{}, err
		}
		pass := func(p Params, m, _ *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
			checkParams(who, p, 0)
			checkWidth(who, m, dim)
			n, _ := m.Dims()
			out, ld := f.apply(m, inverse), repeatedLogDet(n, f.logDet(inverse))
			if !vjp {
				return out, ld, nil
			}
			return out, ld, func(dout *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkPullback(who, dout, dLogDet, dp, nil, n, dim, 0, 0)
				return f.pullback(dout, inverse)
			}
		}
		return Params{}, layerPass(pass).bijection(), nil
	}
}

// fixedAffine is the columnwise map z = (x − mean)/scale (and its inverse
// x = z·scale + mean) of Standardize and of a Model's context.
type fixedAffine struct {
	mean, scale []float64
	logScale    float64 // Σ log scale
}

// newFixedAffine checks mean and scale (finite; positive and finite) and
// returns their map; who names it in errors.
func newFixedAffine(who string, mean, scale []float64) (*fixedAffine, error) {
	f := &fixedAffine{mean: slices.Clone(mean), scale: slices.Clone(scale)}
	for j := range mean {
		if math.IsNaN(mean[j]) || math.IsInf(mean[j], 0) {
			return nil, fmt.Errorf("flows: %s: mean %d is %v, want a finite number", who, j, mean[j])
		}
		if !(scale[j] > 0) || math.IsInf(scale[j], 1) {
			return nil, fmt.Errorf("flows: %s: scale %d is %v, want a positive finite number", who, j, scale[j])
		}
		f.logScale += math.Log(scale[j])
	}
	return f, nil
}

// logDet is the map's log-determinant per row: −Σ log scale, or +Σ for the
// inverse.
func (f *fixedAffine) logDet(inverse bool) float64 {
	if inverse {
		return f.logScale
	}
	return -f.logScale
}

// apply returns (m − mean)/scale, or m·scale + mean when inverse, as a new
// matrix.
func (f *fixedAffine) apply(m *mat.Dense, inverse bool) *mat.Dense {
	_, d := m.Dims()
	out, n := f.colMap(inverse).apply(m)
	return mat.NewDense(n, d, out)
}

// colMap returns the map (x − mean)/scale, or x·scale + mean when inverse.
func (f *fixedAffine) colMap(inverse bool) colAffine {
	if inverse {
		return colAffine{mul: f.scale, add: f.mean}
	}
	return colAffine{sub: f.mean, div: f.scale}
}

// pullback returns dL/din from dL/dout: the map is elementwise linear with
// slope 1/scale (or scale when inverse) and a constant log-det, so the
// log-det adds nothing.
func (f *fixedAffine) pullback(dout *mat.Dense, inverse bool) *mat.Dense {
	n, d := dout.Dims()
	return mat.NewDense(n, d, f.colMap(inverse).slopeBack(dout))
}
