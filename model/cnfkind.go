package model

// The cnf kind: a continuous normalizing flow (flows.CNF), its solver
// settings (Config.ODE) and the count of its function evaluations
// (Model.Evaluations). The counter is the model's own, filled by the CNF
// layers' Stats hook with atomic additions (the solves run on the fit's
// and the server's goroutines).

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/gonormflows/flows"
)

// KindCNF is a continuous normalizing flow, FFJORD (Grathwohl et al., 2019):
// blocks of [CNF(CNFConfig{Hidden, Activation, Solver: DOPRI5 with
// Config.ODE's tolerances and budget, Trace, Gradient})], one block by
// default. Its dynamics nets need a smooth activation: Tanh or SiLU (the
// default ReLU, the zero Activation, becomes Tanh). Its log-determinant is
// exact for up to 8 columns and Hutchinson's estimate above (see
// flows.TraceAuto), so that above 8 columns LogPDF gives an unbiased
// estimate of a row's log density (within the solver's tolerance), not its
// value; Config.ODE.Trace exact gives the value, for about dim times the
// work. Its gradients are the adjoint method's by default. Each block is an
// ODE solve, so a fit is much slower than the other kinds' and its cost
// grows as the dynamics stiffen (Model.Evaluations counts it).
const KindCNF Kind = "cnf"

// Defaults of the cnf kind.
const (
	cnfKindLayers   = 1
	cnfKindTol      = 1e-4 // RTol and ATol
	cnfKindMaxSteps = 200
)

var kindCNF = kindSpec{
	KindInfo: KindInfo{Kind: KindCNF, Summary: "continuous normalizing flow (FFJORD): an ODE solve per block, one block by default", MinDim: 1},
	defaults: cnfDefaults,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.CNF(cnfBlockConfig(c, c.nfe))}
	},
}

// cnfBlockConfig returns the CNFConfig of a block of the cnf kind's model
// of c (defaults filled in), whose solves nfe counts (when not nil).
func cnfBlockConfig(c Config, nfe *nfeCounter) flows.CNFConfig {
	cfg := flows.CNFConfig{
		Hidden: c.Hidden, Activation: c.Activation,
		Solver: flows.ODESolver{Method: flows.DOPRI5, RTol: c.ODE.RTol, ATol: c.ODE.ATol, MaxSteps: c.ODE.MaxSteps},
		Trace:  c.ODE.Trace, Gradient: c.ODE.Gradient,
	}
	if nfe != nil {
		cfg.Stats = nfe.add
	}
	return cfg
}

// ODEConfig holds the cnf kind's solver settings (Config.ODE). Zero fields
// take the defaults: tolerances 1e-4, a budget of 200 steps per solve,
// TraceAuto and Adjoint. A solve that exceeds its budget gives NaN, which
// Model.Fit treats as a blow-up (it restores the epoch's start and halves
// the learning rate).
type ODEConfig struct {
	// RTol and ATol are the DOPRI5 solver's relative and absolute
	// tolerances (default 1e-4 each).
	RTol float64 `json:"rtol,omitempty"`
	ATol float64 `json:"atol,omitempty"`
	// MaxSteps bounds the steps of one solve (default 200).
	MaxSteps int `json:"maxSteps,omitempty"`
	// Trace says how the log-determinant is computed (default auto).
	Trace flows.TraceMode `json:"trace,omitempty"`
	// Gradient says how gradients are computed (default adjoint).
	Gradient flows.CNFGradient `json:"gradient,omitempty"`
}

// cnfDefaults fills in the cnf kind's defaults and checks its settings.
func cnfDefaults(c *Config) error {
	if c.Layers == 0 {
		c.Layers = cnfKindLayers
	}
	switch c.Activation {
	case flows.ReLU:
		c.Activation = flows.Tanh
	case flows.Tanh, flows.SiLU:
	default:
		return fmt.Errorf("flows: Config: kind %q: activation %v has no second derivative everywhere; want tanh or silu", string(c.Kind), c.Activation)
	}
	o := &c.ODE
	if o.RTol == 0 && o.ATol == 0 {
		o.RTol, o.ATol = cnfKindTol, cnfKindTol
	}
	if o.MaxSteps == 0 {
		o.MaxSteps = cnfKindMaxSteps
	}
	if _, err := o.Trace.MarshalText(); err != nil {
		return fmt.Errorf("flows: Config: unknown trace mode %d", int(o.Trace))
	}
	if _, err := o.Gradient.MarshalText(); err != nil {
		return fmt.Errorf("flows: Config: unknown gradient %d", int(o.Gradient))
	}
	if !(o.RTol >= 0 && o.ATol >= 0) || math.IsInf(o.RTol, 1) || math.IsInf(o.ATol, 1) {
		return fmt.Errorf("flows: Config: ODE tolerances rtol %v and atol %v, want finite and not negative", o.RTol, o.ATol)
	}
	if o.MaxSteps < 0 {
		return fmt.Errorf("flows: Config: ODE budget of %d steps, want at least 1 (or 0 for %d)", o.MaxSteps, cnfKindMaxSteps)
	}
	return nil
}

// Evaluations counts the evaluations of a cnf model's dynamics nets (one
// forward pass of a net each, and in a pullback one reverse pass with it).
type Evaluations struct {
	// Train counts those of the solves whose pullback follows: the
	// forward halves of the training steps.
	Train int64
	// Backward counts those of the pullbacks: the backward halves.
	Backward int64
	// Other counts those of every other solve: validation, scoring,
	// sampling.
	Other int64
	// Penalty counts those of the solves of RNODE's regulariser
	// (Model.CNFPenalty), forward and backward, which the other fields
	// leave out.
	Penalty int64
}

// nfeCounter accumulates Evaluations from the CNF layers' Stats hook.
type nfeCounter struct{ train, backward, other, penalty atomic.Int64 }

func (n *nfeCounter) add(s flows.CNFStats) {
	switch {
	case s.Penalty:
		n.penalty.Add(int64(s.NFE))
	case s.Pass == flows.CNFBackward:
		n.backward.Add(int64(s.NFE))
	case s.VJP:
		n.train.Add(int64(s.NFE))
	default:
		n.other.Add(int64(s.NFE))
	}
}

// Evaluations returns the function evaluations of the model's ODE solves
// since it was made or loaded, summed over its blocks: zero for the other
// kinds. The counts are the model's own and safe to read during a fit.
func (m *Model) Evaluations() Evaluations {
	if m.nfe == nil {
		return Evaluations{}
	}
	return Evaluations{Train: m.nfe.train.Load(), Backward: m.nfe.backward.Load(), Other: m.nfe.other.Load(), Penalty: m.nfe.penalty.Load()}
}
