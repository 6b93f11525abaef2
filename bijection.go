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
// dp (len(dp) == len(p)), adds dL/dc into dc when dc is not nil (n×contextDim,
// like the pass's context), and returns dL/dx, a new n×dim matrix. It reads
// but never modifies dz and dLogDet, which must not be nil. Like dp, dc is
// added into, so one dc serves every layer of a stack that reads the same
// context; pass nil when the context's gradient is not wanted.
type Pullback func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) (dx *mat.Dense)

// Bijection is an invertible, differentiable map of dim-dimensional rows x,
// optionally conditioned on contextDim-dimensional rows c (a context: for
// each fixed c the map is invertible in x), with its log-determinant
// Jacobian and hand-written gradients. Every field is a pure function of its
// arguments: safe for concurrent use, and never modifying its inputs.
//
// Direct maps data x to latent z (the density and training direction);
// Inverse maps z back to x (the sampling direction). logDet[i] is
// log|det ∂z_i/∂x_i| for Direct and log|det ∂x_i/∂z_i| for Inverse, at fixed
// c_i, so the two are negatives of each other at matching points.
//
// The context c holds one row per row of the batch, n×contextDim, and is
// nil when contextDim is 0 (an unconditional layer or stack). A layer that
// reads the context panics when c does not have that shape; a layer whose
// map does not depend on it (Reverse, ActNorm, …) ignores it.
type Bijection struct {
	// Direct maps each row of x (n×dim), given the same row of c, to a
	// row of z and returns z and the per-row log-determinant.
	Direct func(p Params, x, c *mat.Dense) (z *mat.Dense, logDet []float64)

	// Inverse undoes Direct at the same c.
	Inverse func(p Params, z, c *mat.Dense) (x *mat.Dense, logDet []float64)

	// DirectVJP computes what Direct does and returns its pullback as well.
	DirectVJP func(p Params, x, c *mat.Dense) (z *mat.Dense, logDet []float64, back Pullback)

	// InverseVJP computes what Inverse does and returns its pullback
	// (gradients through the sampling direction). It is nil for layers that
	// do not provide it; Invert of such a layer has no DirectVJP.
	InverseVJP func(p Params, z, c *mat.Dense) (x *mat.Dense, logDet []float64, back Pullback)

	// InitFromData, when not nil, sets the layer's data-dependent
	// parameters in p from the batch x (as ActNorm does) and returns the
	// batch as the layer, so initialised, maps it: Direct(p, x, c)'s z.
	// Layers without data-dependent initialisation leave it nil; Serial and
	// Flow pass the batch through such layers with Direct. See InitFromData.
	InitFromData func(p Params, x, c *mat.Dense) *mat.Dense

	// UpdateState, when not nil, updates the layer's non-trainable state
	// held in p (BatchNorm's running averages) from the training batch x,
	// in place, and returns the batch as the layer maps it. Such state
	// receives zero gradient. Layers without state leave it nil; Serial and
	// Flow pass the batch through such layers with Direct. See UpdateState.
	UpdateState func(p Params, x, c *mat.Dense) *mat.Dense

	// Prepare, when not nil, returns the layer at the parameters p with
	// what depends on p alone computed once (a MADE's masked weights), for
	// scoring and sampling at fixed parameters; call it through
	// PrepareBijection, which serves layers without one too. It reads p
	// only while it runs.
	Prepare func(p Params) PreparedBijection
}

// InitFunc makes a Bijection for rows of width dim conditioned on contexts
// of width contextDim (0 for none). It returns the initial parameters (drawn
// from key, the same for the same key) and the bijection, or an error when
// the layer cannot work at those widths.
type InitFunc func(key Key, dim, contextDim int) (Params, Bijection, error)

// checkWidth panics with a flows: message when m does not have dim columns.
func checkWidth(who string, m *mat.Dense, dim int) {
	if m == nil {
		panic("flows: " + who + ": nil batch")
	}
	if _, c := m.Dims(); c != dim {
		panic(fmt.Sprintf("flows: %s: batch has %d columns, want %d", who, c, dim))
	}
}

// checkContext panics with a flows: message when c is not an n×cdim
// context: nil (or empty) is the only context of width 0, and a layer of
// context width cdim > 0 needs one row per row of its batch.
func checkContext(who string, c *mat.Dense, n, cdim int) {
	if cdim == 0 {
		if c != nil && !c.IsEmpty() {
			if _, cc := c.Dims(); cc > 0 {
				panic(fmt.Sprintf("flows: %s: context of %d columns given to a layer without a context", who, cc))
			}
		}
		return
	}
	if c == nil || c.IsEmpty() {
		panic(fmt.Sprintf("flows: %s: nil context, want %d×%d", who, n, cdim))
	}
	if r, cc := c.Dims(); r != n || cc != cdim {
		panic(fmt.Sprintf("flows: %s: context is %d×%d, want %d×%d", who, r, cc, n, cdim))
	}
}

// checkParams panics with a flows: message when p does not have n entries.
func checkParams(who string, p Params, n int) {
	if len(p) != n {
		panic(fmt.Sprintf("flows: %s: %d parameters, want %d", who, len(p), n))
	}
}

// checkPullback panics with a flows: message when the gradients handed to a
// pullback do not match the pass's shapes; cdim is the pass's context width
// (dc may be nil; when not, it must be n×cdim).
func checkPullback(who string, dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense, n, dim, np, cdim int) {
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
	if dc != nil && !dc.IsEmpty() {
		if r, c := dc.Dims(); r != n || c != cdim {
			panic(fmt.Sprintf("flows: %s: context gradient is %d×%d, want %d×%d", who, r, c, n, cdim))
		}
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

// checkContextDim returns an init error for a negative context width.
func checkContextDim(who string, contextDim int) error {
	if contextDim < 0 {
		return fmt.Errorf("flows: %s: context dimension %d, need at least 0", who, contextDim)
	}
	return nil
}

// layerPass is a layer written as one pass over its input u with context
// c: Direct when !inverse, Inverse when inverse, and the pullback when vjp
// (else nil).
type layerPass func(p Params, u, c *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback)

// bijection returns the four functions of a layer written as one pass.
func (pass layerPass) bijection() Bijection {
	return Bijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := pass(p, x, c, false, false)
			return z, ld
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := pass(p, z, c, true, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return pass(p, x, c, false, true)
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return pass(p, z, c, true, true)
		},
	}
}
