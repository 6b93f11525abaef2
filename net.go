package flows

import "gonum.org/v1/gonum/mat"

// NetPullback is the vector-Jacobian product of a Net: given dL/dy (n×out)
// it adds dL/dparams into dp (len(dp) == len(p)) and returns dL/dx, a new
// n×in matrix. It never modifies dy.
type NetPullback func(dy *mat.Dense, dp Params) (dx *mat.Dense)

// Net is a differentiable function from rows of width in to rows of width
// out: the conditioner inside coupling and autoregressive layers. Like
// Bijection, its fields are pure functions, safe for concurrent use.
type Net struct {
	// Apply maps x (n×in) to y (n×out).
	Apply func(p Params, x *mat.Dense) (y *mat.Dense)

	// ApplyVJP computes what Apply does and returns its pullback.
	ApplyVJP func(p Params, x *mat.Dense) (y *mat.Dense, back NetPullback)

	// prepare, when not nil, returns the net at the parameters p as a row
	// map (see preparedNet); MLP has one (mlpprep.go).
	prepare func(p Params) preparedNet
}

// NetInitFunc makes a Net from in to out columns, with initial parameters
// drawn from key. Conditioner nets used by coupling layers start with their
// last layer at zero, so that the coupling starts as the identity.
type NetInitFunc func(key Key, in, out int) (Params, Net, error)
