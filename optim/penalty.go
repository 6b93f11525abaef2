package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// Penalty is a regulariser of the parameters and the batch that a training
// loop adds to the negative log-likelihood: the way for a distribution or a
// layer to put a term of its own, with its own gradient, into the loss
// that FitConfig.Penalty gives Fit. Called with the parameters p, a step's
// batch x and its contexts c (nil for an unconditional model), it returns
// the penalty's value on that batch and adds its gradient with respect to
// p into grad (which holds the NLL's gradient: add, do not overwrite).
// It must not modify p, x or c, and must be deterministic: the same
// arguments give the same value and gradient, so that a fit stays
// reproducible. A NaN or ±Inf value is a blow-up, as a non-finite loss is
// (Fit recovers from it).
//
// Examples: an L2 weight decay, λ·‖p‖²/2 with gradient λ·p; RNODE's
// regularisers of a continuous normalizing flow, whose flows.CNFPenalty
// works on the CNF layer's slice of p and its input rows:
//
//	pen, err := flows.CNFPenalty(key, cfg, dim, 0) // cfg.Kinetic, cfg.Jacobian set
//	nb := ...                                      // the CNF's parameters come first in Flow's layout
//	fc.Penalty = func(p flows.Params, x, c *mat.Dense, grad flows.Params) float64 {
//		return pen(p[:nb], x, c, grad[:nb])
//	}
type Penalty func(p flows.Params, x, c *mat.Dense, grad flows.Params) float64

// penalise is the step's regulariser, after its NLL: it adds
// FitConfig.Penalty's gradient into r.grad and returns its value (0
// without one), or why the step blew up when the value is not finite.
func (r *fitRun) penalise() (float64, string) {
	if r.fc.Penalty == nil {
		return 0, ""
	}
	v := r.fc.Penalty(r.p, r.batch, r.cbatch, r.grad)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, fmt.Sprintf("the penalty is not finite (%v)", v)
	}
	return v, ""
}
