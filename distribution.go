package flows

import "gonum.org/v1/gonum/mat"

// DistPullback is the vector-Jacobian product of a log-density evaluation,
// returned by Distribution.LogPDFVJP. Given dL/dlogp (length n) it adds
// dL/dparams into dp (len(dp) == len(p)) and returns dL/dx, a new n×dim
// matrix. It never modifies dLogp, which must not be nil.
type DistPullback func(dLogp []float64, dp Params) (dx *mat.Dense)

// Distribution is a parameterised probability density over dim-dimensional
// rows that can be sampled. As with Bijection, every field is a pure function
// of its arguments, safe for concurrent use.
type Distribution struct {
	// LogPDF returns log p(x_i) for each row of x (n×dim).
	LogPDF func(p Params, x *mat.Dense) []float64

	// Sample draws n rows. The same key and parameters give the same rows.
	Sample func(key Key, p Params, n int) *mat.Dense

	// LogPDFVJP computes LogPDF and returns its pullback.
	LogPDFVJP func(p Params, x *mat.Dense) (logp []float64, back DistPullback)

	// InitFromData, when not nil, sets data-dependent parameters in p from
	// the batch x. Flow provides it when its bijection does. See InitFromData.
	InitFromData func(p Params, x *mat.Dense)

	// UpdateState, when not nil, updates non-trainable state in p (running
	// averages) from the training batch x. See UpdateState.
	UpdateState func(p Params, x *mat.Dense)
}

// DistInitFunc makes a Distribution over rows of width dim. It returns the
// initial parameters (the same for the same key) and the distribution, or an
// error when it cannot work at that dimension.
type DistInitFunc func(key Key, dim int) (Params, Distribution, error)

// InitFromData runs the data-dependent initialisation of d (ActNorm's, in
// any layer of a Flow's Serial stack) on the batch x, setting parameters in p
// in place. It does nothing when d has none. Call it once, after init and
// before training, with a representative batch.
func InitFromData(d Distribution, p Params, x *mat.Dense) {
	if d.InitFromData != nil {
		d.InitFromData(p, x)
	}
}

// UpdateState updates the non-trainable state of d (BatchNorm's running
// averages, in any layer of a Flow's Serial stack) from the training batch
// x, in place in p. It does nothing when d has none. A training loop calls
// it once per step, with the step's batch, after the optimiser's update.
func UpdateState(d Distribution, p Params, x *mat.Dense) {
	if d.UpdateState != nil {
		d.UpdateState(p, x)
	}
}
