package flows

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Params is a flat vector of parameters. A layer documents the layout of its
// slice; combinators (Serial, Flow) concatenate their children's slices and
// hand each child a view, so one vector holds a whole model and gradients
// share its layout.
type Params []float64

// Pullback is the vector-Jacobian product of a Direct (or Inverse) pass,
// returned by Bijection.DirectVJP and Bijection.InverseVJP.
//
// Given the gradient of a scalar loss L with respect to the pass's outputs,
// dz (n×dim, like the output) and dLogDet (length n), it adds dL/dparams into
// dp (len(dp) == len(p)) and returns dL/dx, a new n×dim matrix. It reads but
// never modifies dz and dLogDet. Neither may be nil.
type Pullback func(dz *mat.Dense, dLogDet []float64, dp Params) (dx *mat.Dense)

// Bijection is an invertible, differentiable map of dim-dimensional rows,
// with its log-determinant Jacobian and hand-written gradients. Every field
// is a pure function of its arguments: safe for concurrent use, and never
// modifying its inputs.
//
// Direct maps data x to latent z (the density and training direction);
// Inverse maps z back to x (the sampling direction). logDet[i] is
// log|det ∂z_i/∂x_i| for Direct and log|det ∂x_i/∂z_i| for Inverse, so the
// two are negatives of each other at matching points.
type Bijection struct {
	// Direct maps each row of x (n×dim) to a row of z and returns
	// z and the per-row log-determinant.
	Direct func(p Params, x *mat.Dense) (z *mat.Dense, logDet []float64)

	// Inverse undoes Direct.
	Inverse func(p Params, z *mat.Dense) (x *mat.Dense, logDet []float64)

	// DirectVJP computes what Direct does and returns its pullback as well.
	DirectVJP func(p Params, x *mat.Dense) (z *mat.Dense, logDet []float64, back Pullback)

	// InverseVJP computes what Inverse does and returns its pullback
	// (gradients through the sampling direction). It is nil for layers that
	// do not provide it; Invert of such a layer has no DirectVJP.
	InverseVJP func(p Params, z *mat.Dense) (x *mat.Dense, logDet []float64, back Pullback)

	// InitFromData, when not nil, sets the layer's data-dependent
	// parameters in p from the batch x (as ActNorm does) and returns the
	// batch as the layer, so initialised, maps it: Direct(p, x)'s z. Layers
	// without data-dependent initialisation leave it nil; Serial and Flow
	// pass the batch through such layers with Direct. See InitFromData.
	InitFromData func(p Params, x *mat.Dense) *mat.Dense

	// UpdateState, when not nil, updates the layer's non-trainable state
	// held in p (BatchNorm's running averages) from the training batch x,
	// in place, and returns the batch as the layer maps it. Such state
	// receives zero gradient. Layers without state leave it nil; Serial and
	// Flow pass the batch through such layers with Direct. See UpdateState.
	UpdateState func(p Params, x *mat.Dense) *mat.Dense
}

// InitFunc makes a Bijection for rows of width dim. It returns the initial
// parameters (drawn from key, the same for the same key) and the bijection,
// or an error when the layer cannot work at that dimension.
type InitFunc func(key Key, dim int) (Params, Bijection, error)

// checkWidth panics with a flows: message when m does not have dim columns.
func checkWidth(who string, m *mat.Dense, dim int) {
	if m == nil {
		panic("flows: " + who + ": nil batch")
	}
	if _, c := m.Dims(); c != dim {
		panic(fmt.Sprintf("flows: %s: batch has %d columns, want %d", who, c, dim))
	}
}

// checkParams panics with a flows: message when p does not have n entries.
func checkParams(who string, p Params, n int) {
	if len(p) != n {
		panic(fmt.Sprintf("flows: %s: %d parameters, want %d", who, len(p), n))
	}
}

// checkPullback panics with a flows: message when the gradients handed to a
// pullback do not match the pass's shapes.
func checkPullback(who string, dz *mat.Dense, dLogDet []float64, dp Params, n, dim, np int) {
	if dz == nil || dLogDet == nil {
		panic("flows: " + who + ": nil gradient in pullback")
	}
	if r, c := dz.Dims(); r != n || c != dim {
		panic(fmt.Sprintf("flows: %s: pullback gradient is %d×%d, want %d×%d", who, r, c, n, dim))
	}
	if len(dLogDet) != n {
		panic(fmt.Sprintf("flows: %s: pullback log-det gradient has length %d, want %d", who, len(dLogDet), n))
	}
	if len(dp) != np {
		panic(fmt.Sprintf("flows: %s: parameter gradient has length %d, want %d", who, len(dp), np))
	}
}

// rawRows returns the backing slice of a batch as rows of width c, copying
// only when m is a view whose rows are not contiguous.
func rawRows(m *mat.Dense) (data []float64, n, c int) {
	n, c = m.Dims()
	raw := m.RawMatrix()
	if raw.Stride == c {
		return raw.Data[:n*c], n, c
	}
	out := make([]float64, n*c)
	for i := 0; i < n; i++ {
		copy(out[i*c:(i+1)*c], raw.Data[i*raw.Stride:i*raw.Stride+c])
	}
	return out, n, c
}

// checkDim returns an init error when dim is below the layer's minimum.
func checkDim(who string, dim, least int) error {
	if dim < least {
		return fmt.Errorf("flows: %s: dimension %d, need at least %d", who, dim, least)
	}
	return nil
}
