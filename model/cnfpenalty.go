package model

// RNODE's regularisers for a fit of a cnf model: a training setting that
// goes into optim.FitConfig.Penalty, not into the model or its file.

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// RNODE holds the weights of RNODE's regularisers (Finlay et al., "How to
// train your neural ODE", 2020) for a fit of a cnf model: the kinetic
// energy ∫‖f‖² dt and the Jacobian's Frobenius norm ∫‖∂f/∂z‖²_F dt of the
// dynamics along each row's trajectory (see flows.CNFPenalty). They favour
// straight, slowly varying trajectories, which the solver crosses in fewer
// steps. They are a training setting, not part of the model: a model file
// does not record them, and scoring and sampling do not depend on them.
type RNODE struct {
	// Kinetic and Jacobian are the weights (0: that term is off). RNODE
	// used 0.01 each.
	Kinetic, Jacobian float64
	// Steps is the number of fixed RK4 steps of the regulariser's solve;
	// 0 solves it with the blocks' own DOPRI5 and tolerances.
	Steps int
}

// rnodeTag is folded into a model's seed to make the key of the
// regulariser's Hutchinson noise.
const rnodeTag = 0x726e6f6465 // "rnode"

// CNFPenalty returns RNODE's regulariser r of the model's CNF block, for
// optim.FitConfig.Penalty in Model.Fit: Fit then minimises each
// minibatch's NLL plus r's weighted integrals along the rows' trajectories
// through the block (its input is the data after the model's fixed
// Bounded and Standardize layers, in the standardised units), with their
// gradient by the block's own method (the adjoint by default). The
// regulariser is a second ODE solve per step, which Model.Evaluations
// counts apart (Penalty).
//
// It returns an error for a model of another kind, for a model of more
// than one block (whose later blocks' inputs depend on the earlier
// blocks' parameters, a dependence this regulariser does not
// differentiate), for a negative or non-finite weight, a negative Steps,
// and when both weights are zero (no penalty: leave FitConfig.Penalty
// nil).
func (m *Model) CNFPenalty(r RNODE) (optim.Penalty, error) {
	c := m.Config
	switch {
	case c.Kind != KindCNF:
		return nil, fmt.Errorf("flows: CNFPenalty: kind %q has no ODE; RNODE applies to cnf only", string(c.Kind))
	case c.Layers != 1:
		return nil, fmt.Errorf("flows: CNFPenalty: %d blocks; RNODE's regulariser is available for one block (the cnf default)", c.Layers)
	case !(r.Kinetic >= 0 && r.Jacobian >= 0) || math.IsInf(r.Kinetic, 1) || math.IsInf(r.Jacobian, 1):
		return nil, fmt.Errorf("flows: CNFPenalty: weights %v and %v, want finite and not negative", r.Kinetic, r.Jacobian)
	case r.Steps < 0:
		return nil, fmt.Errorf("flows: CNFPenalty: %d RK4 steps, want at least 1 (or 0 for DOPRI5)", r.Steps)
	}
	cfg := cnfBlockConfig(c, m.nfe)
	cfg.Kinetic, cfg.Jacobian = r.Kinetic, r.Jacobian
	if r.Steps > 0 {
		cfg.Solver = flows.ODESolver{Method: flows.RK4, Steps: r.Steps}
	}
	cdim := m.ContextDim + m.Categories.Width()
	pen, err := flows.CNFPenalty(flows.NewKey(c.Seed).Fold(rnodeTag), cfg, m.Dim, cdim)
	if err != nil {
		return nil, err
	}
	// The block's input: the data through the layers before it, which
	// have no parameters.
	layers := []flows.InitFunc{flows.Standardize(m.Mean, m.Scale)}
	if b := c.boundedLayer(m.Dim); b != nil {
		layers = slices.Insert(layers, 0, b)
	}
	_, prefix, err := flows.Serial(layers...)(flows.Key{}, m.Dim, 0)
	if err != nil {
		return nil, err
	}
	var ctx flows.Bijection // the context's standardisation, as Dist's
	if m.ContextDim > 0 {
		cm, cs := slices.Clone(m.ContextMean), slices.Clone(m.ContextScale)
		for range m.Categories.Width() {
			cm, cs = append(cm, 0), append(cs, 1)
		}
		if _, ctx, err = flows.Standardize(cm, cs)(flows.Key{}, cdim, 0); err != nil {
			return nil, err
		}
	}
	np := len(m.Params) // the block's parameters are all of them (the prior has none)
	return func(p flows.Params, x, cx *mat.Dense, grad flows.Params) float64 {
		u, _ := prefix.Direct(nil, x, nil)
		if ctx.Direct != nil && cx != nil {
			cx, _ = ctx.Direct(nil, cx, nil)
		}
		return pen(p[:np], u, cx, grad[:np])
	}, nil
}
