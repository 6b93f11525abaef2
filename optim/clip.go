package optim

import (
	"math"

	"gonum.org/v1/gonum/floats"
)

// ClipGlobalNorm scales grad in place so that its Euclidean norm is at most
// maxNorm (up to rounding in the last bit), keeping its direction, and
// returns the norm grad had before clipping. A grad whose norm is at most
// maxNorm is left unchanged.
//
// maxNorm ≤ 0 or +Inf means no clipping: grad is left unchanged and only its
// norm is returned, which is handy for logging. The norm is computed as a
// scaled sum of squares, so it does not overflow even when the squares of
// the entries would. When the norm is not finite (grad holds a NaN or an
// Inf) grad is also left unchanged, and the NaN or +Inf returned tells the
// caller to skip the step. ClipGlobalNorm panics if maxNorm is NaN.
//
// "Global" means grad is the gradient of all the parameters at once, as a
// flat flows.Params is, rather than one layer's.
func ClipGlobalNorm(grad []float64, maxNorm float64) (norm float64) {
	if math.IsNaN(maxNorm) {
		panic("optim: ClipGlobalNorm: maxNorm is NaN")
	}
	norm = floats.Norm(grad, 2)
	if maxNorm <= 0 || math.IsInf(maxNorm, 1) || math.IsNaN(norm) || math.IsInf(norm, 1) {
		return norm
	}
	if norm > maxNorm {
		floats.Scale(maxNorm/norm, grad)
	}
	return norm
}
