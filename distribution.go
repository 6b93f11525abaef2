package flows

import "gonum.org/v1/gonum/mat"

// DistPullback is the vector-Jacobian product of a log-density evaluation,
// returned by Distribution.LogPDFVJP. Given dL/dlogp (length n) it adds
// dL/dparams into dp (len(dp) == len(p)), adds dL/dc into dc when dc is not
// nil (n×contextDim), and returns dL/dx, a new n×dim matrix. It never
// modifies dLogp, which must not be nil.
type DistPullback func(dLogp []float64, dp Params, dc *mat.Dense) (dx *mat.Dense)

// Distribution is a parameterised probability density over dim-dimensional
// rows x, optionally conditioned on contextDim-dimensional rows c: p(x | c).
// As with Bijection, every field is a pure function of its arguments, safe
// for concurrent use, and the context c (one row per row of x, n×contextDim)
// is nil when contextDim is 0.
type Distribution struct {
	// LogPDF returns log p(x_i | c_i) for each row of x (n×dim).
	LogPDF func(p Params, x, c *mat.Dense) []float64

	// Sample draws n rows, row i from p(· | c_i) (c is nil or n×contextDim:
	// to draw m rows given one context, repeat it m times). The same key,
	// parameters and contexts give the same rows.
	Sample func(key Key, p Params, n int, c *mat.Dense) *mat.Dense

	// LogPDFVJP computes LogPDF and returns its pullback.
	LogPDFVJP func(p Params, x, c *mat.Dense) (logp []float64, back DistPullback)

	// Latent, when not nil, maps each row of x to the latent space: the
	// rows z = f(x; c) whose prior density, with f's log-determinant, gives
	// LogPDF. Flow provides it (its bijection's Direct); a plain density
	// leaves it nil.
	Latent func(p Params, x, c *mat.Dense) *mat.Dense

	// InitFromData, when not nil, sets data-dependent parameters in p from
	// the batch x (and its context c). Flow provides it when its bijection
	// does. See InitFromData.
	InitFromData func(p Params, x, c *mat.Dense)

	// UpdateState, when not nil, updates non-trainable state in p (running
	// averages) from the training batch x (and its context c). See
	// UpdateState.
	UpdateState func(p Params, x, c *mat.Dense)

	// Prepare, when not nil, returns the distribution at the parameters p
	// with what depends on p alone computed once (Flow provides it); call
	// it through PrepareDistribution, which serves every distribution. It
	// reads p only while it runs.
	Prepare func(p Params) PreparedDistribution
}

// DistInitFunc makes a Distribution over rows of width dim given contexts of
// width contextDim (0 for none). It returns the initial parameters (the same
// for the same key) and the distribution, or an error when it cannot work at
// those widths.
type DistInitFunc func(key Key, dim, contextDim int) (Params, Distribution, error)

// InitFromData runs the data-dependent initialisation of d (ActNorm's, in
// any layer of a Flow's Serial stack) on the batch x with its context c (nil
// for none), setting parameters in p in place. It does nothing when d has
// none. Call it once, after init and before training, with a
// representative batch.
func InitFromData(d Distribution, p Params, x, c *mat.Dense) {
	if d.InitFromData != nil {
		d.InitFromData(p, x, c)
	}
}

// UpdateState updates the non-trainable state of d (BatchNorm's running
// averages, in any layer of a Flow's Serial stack) from the training batch
// x with its context c (nil for none), in place in p. It does nothing when d
// has none. A training loop calls it once per step, with the step's batch,
// after the optimiser's update.
func UpdateState(d Distribution, p Params, x, c *mat.Dense) {
	if d.UpdateState != nil {
		d.UpdateState(p, x, c)
	}
}
