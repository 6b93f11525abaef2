package flows

// The continuous normalizing flow (Chen, Rubanova, Bettencourt and
// Duvenaud, "Neural ordinary differential equations", 2018; Grathwohl,
// Chen, Bettencourt, Sutskever and Duvenaud, "FFJORD", 2019).
//
// Time runs from the latent side, t = 0, to the data side, t = Time. The
// state of a row is (z, L) with dz/dt = f(z, t, c) (the dynamics net,
// odenet.go) and dL/dt = tr(∂f/∂z), or Hutchinson's estimate εᵀ(∂f/∂z)ε.
// Direct solves from t = Time (z = x, L = 0) down to t = 0 and returns z
// and L(0) = log|det ∂z/∂x|; Inverse solves from t = 0 up to Time. Every
// row of a batch is integrated in one state vector: the adaptive solver's
// steps are shared by the batch, so a row's result depends on the other
// rows within the solver's tolerance (as in torchdiffeq); with RK4 it does
// not.
//
// Gradients. The pullback of a pass from t_a to t_b with cotangents dz
// and dL runs one of:
//
//   - Adjoint (Chen et al. 2018): the augmented state (z, a, a_θ, a_c),
//     a(t_b) = dz, a_θ = a_c = 0, is solved from t_b back to t_a with
//     dz/dt = f, da/dt = −aᵀ∂f/∂z − dL·∂T/∂z, da_θ/dt = −aᵀ∂f/∂θ −
//     dL·∂T/∂θ and the same for the context; dx = a(t_a), and a_θ(t_a),
//     a_c(t_a) are added into dp and dc. Memory does not grow with the
//     steps; the gradient is that of the exact flow up to the solver's
//     error, not exactly that of the discrete forward solve.
//   - BackpropSteps (discretise-then-optimise): the forward solve records
//     each accepted step's start, and the pullback backpropagates through
//     the Runge–Kutta stages of every step in reverse. The gradient is
//     exactly that of the computed map; memory grows with the steps.
//
// Randomness. The closures are pure functions of (params, x, c), so
// Hutchinson's ε (Rademacher, one draw per row and pass) is drawn from the
// key given to Init folded with a hash of the pass's parameters and of the
// row's values and context: every optimiser step (new parameters) and
// every row draws fresh noise, the same call gives the same bits, and the
// estimate is unbiased for every row. With FixedNoise, ε depends on the
// key and the row's index only, so the estimate is a smooth function of
// the parameters and inputs, as finite-difference checks need. Inverse
// hashes its own input, so with Hutchinson's estimator the two passes'
// log-dets are independent estimates, not negatives of each other.
//
// Regularisers. CNFPenalty solves the same ODE from t = Time down to 0
// with the state [z | R], dR/dt = −(Kinetic·‖f‖² + Jacobian·Σ_k ‖ḟ_k‖²)
// (odenet.go's integrand, with the trace's tangent directions), and its
// pullback is the layer's, run with the cotangents dz = 0 and dR = 1/n:
// the adjoint or backpropagation through the steps, as Gradient says.
//
// A solve that exceeds its step budget does not panic: its rows come out
// NaN (a pullback adds NaN to dp), which optim.Fit treats as a blow-up,
// and the Stats hook receives the error.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/enum"
)

// TraceMode says how a CNF computes the log-determinant's integrand.
type TraceMode int

const (
	// TraceAuto is TraceExact for dimensions up to 8, TraceHutchinson above.
	TraceAuto TraceMode = iota
	// TraceExact computes tr(∂f/∂z) with dim forward tangents.
	TraceExact
	// TraceHutchinson computes the unbiased estimate εᵀ(∂f/∂z)ε with one
	// Rademacher ε per row and pass.
	TraceHutchinson
)

// traceNames and gradientNames name the modes, as model files and the
// command line write them.
var (
	traceNames    = enum.Names[TraceMode]{Type: "TraceMode", What: "trace mode", List: []string{"auto", "exact", "hutchinson"}, Fold: true}
	gradientNames = enum.Names[CNFGradient]{Type: "CNFGradient", What: "CNF gradient", List: []string{"adjoint", "backprop"}, Fold: true}
)

// String returns the mode's name: auto, exact or hutchinson.
func (m TraceMode) String() string { return traceNames.String(m) }

// MarshalText returns the mode's name.
func (m TraceMode) MarshalText() ([]byte, error) { return traceNames.MarshalText(m) }

// UnmarshalText sets the mode from its name, in any case.
func (m *TraceMode) UnmarshalText(b []byte) error { return traceNames.UnmarshalText(m, b) }

// CNFGradient says how a CNF's pullback computes gradients.
type CNFGradient int

const (
	// Adjoint solves the adjoint ODE backwards in time.
	Adjoint CNFGradient = iota
	// BackpropSteps backpropagates through the forward solve's steps.
	BackpropSteps
)

// String returns the mode's name: adjoint or backprop.
func (g CNFGradient) String() string { return gradientNames.String(g) }

// MarshalText returns the mode's name.
func (g CNFGradient) MarshalText() ([]byte, error) { return gradientNames.MarshalText(g) }

// UnmarshalText sets the mode from its name, in any case.
func (g *CNFGradient) UnmarshalText(b []byte) error { return gradientNames.UnmarshalText(g, b) }

// CNFPass names the solve a CNFStats reports.
type CNFPass int

const (
	// CNFDirect is the solve of Direct (or DirectVJP).
	CNFDirect CNFPass = iota
	// CNFInverse is the solve of Inverse (or InverseVJP).
	CNFInverse
	// CNFBackward is the solve (or the backpropagation) of a pullback.
	CNFBackward
)

// CNFStats reports one solve of a CNF layer to CNFConfig.Stats.
type CNFStats struct {
	// Pass says which solve this is.
	Pass CNFPass
	// ODEStats counts the evaluations of the dynamics net (forward
	// passes; in a pullback each comes with one reverse pass) and the
	// steps (for BackpropSteps's pullback, the steps backpropagated
	// through, whose stages it evaluates again).
	ODEStats
	// Rows is the batch size.
	Rows int
	// VJP reports a solve of DirectVJP or InverseVJP, whose pullback
	// follows (in training, the forward half of a step).
	VJP bool
	// Err is the solver's error (wrapping ErrODE), or nil.
	Err error
	// Penalty reports a solve of the regulariser (CNFPenalty) rather
	// than of the layer.
	Penalty bool
}

// CNFConfig configures a CNF layer. The zero value is usable.
type CNFConfig struct {
	// Hidden lists the widths of the dynamics net's hidden layers
	// (default {64, 64}).
	Hidden []int
	// Activation is the dynamics net's activation: Tanh or SiLU. The zero
	// value (ReLU, which has no second derivative) means Tanh.
	Activation Activation
	// Time is the integration time, positive (default 1).
	Time float64
	// Solver is the ODE solver of every pass and of the adjoint (default:
	// DOPRI5 with tolerances 1e-5).
	Solver ODESolver
	// Trace says how the log-determinant is computed (default TraceAuto).
	Trace TraceMode
	// Gradient says how pullbacks compute gradients (default Adjoint).
	Gradient CNFGradient
	// RandomBias starts the dynamics net's hidden biases uniform in
	// ±1/√in (as its weights, and as PyTorch's Linear layers) rather than
	// at zero; the layer still starts as the identity. With the biases b
	// and bw at zero, f is an odd function of z (f(−z) = −f(z)), and for
	// data symmetric about the origin (p(x) = p(−x), as several FFJORD toy
	// densities are) the gradient of the log-likelihood with respect to
	// them is zero but for sampling noise: they stay near zero, and every
	// hidden unit stays centred on the origin.
	RandomBias bool
	// Kinetic and Jacobian are the weights of RNODE's regularisers, the
	// kinetic energy ∫‖f‖² dt and the Jacobian's squared Frobenius norm
	// ∫‖∂f/∂z‖²_F dt, that CNFPenalty adds to the training loss (through
	// optim.FitConfig.Penalty). The layer itself does not read them: its
	// map and log-determinant are the same at any weights. They must not
	// be negative; zero (the default) leaves a term out.
	Kinetic, Jacobian float64
	// FixedNoise makes Hutchinson's ε depend only on the key and the row's
	// index (see the file comment); for checks, not for training.
	FixedNoise bool
	// Stats, when not nil, is called after every solve with its counts
	// (the number of function evaluations per training step is the sum
	// over a DirectVJP and its pullback). It is called from the goroutine
	// that runs the pass and must be safe for concurrent use when the
	// layer is.
	Stats func(CNFStats)
}

// cnfAutoExact is the largest dimension TraceAuto computes exactly.
const cnfAutoExact = 8

// cnfLayer is a resolved CNF.
type cnfLayer struct {
	cfg      CNFConfig
	net      *odeNet
	dim      int
	cdim     int
	k        int // tangent directions per row: dim (exact) or 1
	exact    bool
	noiseKey Key
}

// CNF returns a continuous normalizing flow layer (FFJORD): the map from
// data to latent of the ODE dz/dt = f(z, t, c), f a concat-squash MLP of
// (z, t) and the context, from t = cfg.Time down to 0, with the
// log-determinant integrated along (exactly or by Hutchinson's estimator)
// and gradients by the adjoint method or through the solver's steps. It
// starts as the identity. Parameters: the dynamics net's, layer after
// layer (widths dim+contextDim, Hidden…, dim), each as W (out×in, row
// major), b, gw, gb, bw (each of length out) for
// a = (h·Wᵀ + b) ⊙ σ(t·gw + gb) + t·bw. Init returns an error for a bad
// configuration.
func CNF(cfg CNFConfig) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		l, err := newCNF(cfg, dim, contextDim)
		if err != nil {
			return nil, Bijection{}, err
		}
		netKey, noiseKey := key.Split2()
		l.noiseKey = noiseKey
		return l.net.init(netKey, l.cfg.RandomBias), l.bijection(), nil
	}
}

func newCNF(cfg CNFConfig, dim, contextDim int) (*cnfLayer, error) {
	if err := checkDim("CNF", dim, 1); err != nil {
		return nil, err
	}
	if err := checkContextDim("CNF", contextDim); err != nil {
		return nil, err
	}
	if cfg.Hidden == nil {
		cfg.Hidden = []int{64, 64}
	}
	if cfg.Activation == ReLU {
		cfg.Activation = Tanh
	}
	if err := checkODENet("CNF", cfg.Hidden, cfg.Activation); err != nil {
		return nil, err
	}
	if cfg.Time == 0 {
		cfg.Time = 1
	}
	if !(cfg.Time > 0) || math.IsInf(cfg.Time, 0) {
		return nil, fmt.Errorf("flows: CNF: Time %v must be positive and finite", cfg.Time)
	}
	s, err := cfg.Solver.resolve()
	if err != nil {
		return nil, fmt.Errorf("flows: CNF: %w", err)
	}
	cfg.Solver = s
	if cfg.Trace < TraceAuto || cfg.Trace > TraceHutchinson {
		return nil, fmt.Errorf("flows: CNF: unknown trace mode %d", int(cfg.Trace))
	}
	if cfg.Gradient != Adjoint && cfg.Gradient != BackpropSteps {
		return nil, fmt.Errorf("flows: CNF: unknown gradient mode %d", int(cfg.Gradient))
	}
	if !(cfg.Kinetic >= 0 && cfg.Jacobian >= 0) || math.IsInf(cfg.Kinetic, 0) || math.IsInf(cfg.Jacobian, 0) {
		return nil, fmt.Errorf("flows: CNF: regulariser weights Kinetic %v and Jacobian %v must be finite and not negative", cfg.Kinetic, cfg.Jacobian)
	}
	l := &cnfLayer{cfg: cfg, net: newODENet(dim, contextDim, cfg.Hidden, cfg.Activation), dim: dim, cdim: contextDim}
	l.exact = cfg.Trace == TraceExact || (cfg.Trace == TraceAuto && dim <= cnfAutoExact)
	l.k = 1
	if l.exact {
		l.k = dim
	}
	return l, nil
}

func (l *cnfLayer) bijection() Bijection {
	T := l.cfg.Time
	return Bijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := l.pass("CNF.Direct", p, x, c, T, 0, false)
			return z, ld
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := l.pass("CNF.Inverse", p, z, c, 0, T, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return l.pass("CNF.DirectVJP", p, x, c, T, 0, true)
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return l.pass("CNF.InverseVJP", p, z, c, 0, T, true)
		},
	}
}

// cnfSolve is one pass's inputs, in flat rows, and the per-row scalar it
// integrates beside z with its K tangent directions per row (eps).
type cnfSolve struct {
	p      Params
	c, eps []float64
	n, k   int
	in     odeIntegrand
}

// pass solves from ta to tb; with vjp it returns the pullback too.
func (l *cnfLayer) pass(who string, p Params, in, c *mat.Dense, ta, tb float64, vjp bool) (*mat.Dense, []float64, Pullback) {
	return l.passWith(who, traceIntegrand, p, in, c, ta, tb, vjp)
}

// passWith is pass with the per-row scalar state integrating integ
// (the log-determinant's T, or the regulariser).
func (l *cnfLayer) passWith(who string, integ odeIntegrand, p Params, in, c *mat.Dense, ta, tb float64, vjp bool) (*mat.Dense, []float64, Pullback) {
	checkWidth(who, in, l.dim)
	checkParams(who, p, l.net.np)
	n, _ := in.Dims()
	checkContext(who, c, n, l.cdim)
	zin, _, _ := rawRows(in)
	s := &cnfSolve{p: p, n: n, k: l.k, in: integ}
	if integ.trace == 0 && integ.frob == 0 {
		s.k = 0 // the kinetic energy alone needs no tangents
	}
	if l.cdim > 0 {
		s.c, _, _ = rawRows(c)
	}
	if s.k > 0 {
		s.eps = l.noise(p, zin, s.c, n)
	}
	nd := n * l.dim
	y0 := make([]float64, nd+n)
	copy(y0, zin)
	pass := CNFDirect
	if ta < tb {
		pass = CNFInverse
	}
	var steps []odeStep
	var record func(odeStep)
	if vjp && l.cfg.Gradient == BackpropSteps {
		record = func(st odeStep) { steps = append(steps, st) }
	}
	y, st, err := l.cfg.Solver.solve(l.dynamics(s), ta, tb, y0, record)
	l.report(CNFStats{Pass: pass, ODEStats: st, Rows: n, Err: err, VJP: vjp, Penalty: s.in != traceIntegrand})
	if err != nil {
		fillNaN(y)
	}
	out := mat.NewDense(n, l.dim, append([]float64(nil), y[:nd]...))
	ld := append([]float64(nil), y[nd:]...)
	if !vjp {
		return out, ld, nil
	}
	zOut := y[:nd]
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(who, dz, dLogDet, dp, dc, n, l.dim, len(p), l.cdim)
		dzr, _, _ := rawRows(dz)
		if l.cfg.Gradient == BackpropSteps {
			return l.backprop(s, steps, dzr, dLogDet, dp, dc)
		}
		return l.adjoint(s, zOut, dzr, dLogDet, ta, tb, dp, dc)
	}
	return out, ld, back
}

func (l *cnfLayer) report(s CNFStats) {
	if l.cfg.Stats != nil {
		l.cfg.Stats(s)
	}
}

func fillNaN(v []float64) {
	for i := range v {
		v[i] = math.NaN()
	}
}

// dynamics returns the derivative of the state [z | L].
func (l *cnfLayer) dynamics(s *cnfSolve) ODEFunc {
	nd := s.n * l.dim
	ws := l.net.newWork(s.n, s.k)
	ws.in = s.in
	return func(t float64, y, dy []float64) {
		f := l.net.forward(s.p, t, y[:nd], s.c, s.eps, ws, dy[nd:])
		copy(dy[:nd], f)
	}
}

// noise returns the trace's tangent directions for n rows: K = dim unit
// vectors (exact) or one Rademacher row each (see the file comment).
func (l *cnfLayer) noise(p Params, z, c []float64, n int) []float64 {
	d := l.dim
	eps := make([]float64, l.k*n*d)
	if l.exact {
		for k := 0; k < d; k++ {
			for i := 0; i < n; i++ {
				eps[(k*n+i)*d+k] = 1
			}
		}
		return eps
	}
	var base Key
	if !l.cfg.FixedNoise {
		base = l.noiseKey.Fold(cnfHash(0, p))
	}
	for i := 0; i < n; i++ {
		var key Key
		if l.cfg.FixedNoise {
			key = l.noiseKey.Fold(uint64(i))
		} else {
			h := cnfHash(0, z[i*d:(i+1)*d])
			if l.cdim > 0 {
				h = cnfHash(h, c[i*l.cdim:(i+1)*l.cdim])
			}
			key = base.Fold(h)
		}
		rng := key.Rand()
		var bits uint64
		for j := 0; j < d; j++ {
			if j%64 == 0 {
				bits = rng.Uint64()
			}
			eps[i*d+j] = float64(int(bits&1)*2 - 1)
			bits >>= 1
		}
	}
	return eps
}

// cnfHash mixes the bits of v into h.
func cnfHash(h uint64, v []float64) uint64 {
	for _, x := range v {
		h = mix64(h ^ math.Float64bits(x) ^ 0x9e3779b97f4a7c15)
	}
	return h
}

// backprop is the discretise-then-optimise pullback: it backpropagates
// (dz, dL) through the recorded steps in reverse.
func (l *cnfLayer) backprop(s *cnfSolve, steps []odeStep, dz, dL []float64, dp Params, dc *mat.Dense) *mat.Dense {
	n, d := s.n, l.dim
	nd := n * d
	tab := &rk4Tableau
	if l.cfg.Solver.Method == DOPRI5 {
		tab = &dopri5Tableau
	}
	ybar := make([]float64, nd+n)
	copy(ybar, dz)
	copy(ybar[nd:], dL)
	dpAcc := make([]float64, len(dp))
	var cb []float64
	if l.cdim > 0 && dc != nil {
		cb = make([]float64, n*l.cdim)
	}
	wsF := l.net.newWork(n, s.k)
	wsF.in = s.in
	f := l.dynamics(s)
	tr := make([]float64, n)
	vjp := func(t float64, y, v, out []float64) {
		l.net.forward(s.p, t, y[:nd], s.c, s.eps, wsF, tr)
		l.net.backward(s.p, v[:nd], v[nd:], s.eps, wsF, dpAcc, out[:nd], cb)
		clear(out[nd:])
	}
	w := newRKWork(tab, nd+n)
	stages := len(tab.c)
	kbar, ytmp := make([][]float64, stages), make([][]float64, stages)
	for i := range kbar {
		kbar[i], ytmp[i] = make([]float64, nd+n), make([]float64, nd+n)
	}
	var st ODEStats
	for i := len(steps) - 1; i >= 0; i-- {
		st.NFE += rkStepVJP(tab, f, vjp, steps[i].t, steps[i].h, steps[i].y, ybar, w, kbar, ytmp)
		st.Steps++
	}
	l.report(CNFStats{Pass: CNFBackward, ODEStats: st, Rows: n, Err: nil, Penalty: s.in != traceIntegrand})
	return l.finishPullback(ybar[:nd], dpAcc, cb, dp, dc)
}

// finishPullback adds the accumulated parameter and context cotangents
// into dp and dc and returns dx as a matrix.
func (l *cnfLayer) finishPullback(dx, dpAcc, cb []float64, dp Params, dc *mat.Dense) *mat.Dense {
	for i, v := range dpAcc {
		dp[i] += v
	}
	if cb != nil {
		for i := 0; i < len(cb)/l.cdim; i++ {
			row := dc.RawRowView(i)
			for j := range row {
				row[j] += cb[i*l.cdim+j]
			}
		}
	}
	return mat.NewDense(len(dx)/l.dim, l.dim, append([]float64(nil), dx...))
}

// adjoint is the pullback by the adjoint method: it solves the augmented
// state [z | a | a_θ | a_c] from tb back to ta.
func (l *cnfLayer) adjoint(s *cnfSolve, zOut, dz, dL []float64, ta, tb float64, dp Params, dc *mat.Dense) *mat.Dense {
	n, d, np := s.n, l.dim, len(dp)
	nd := n * d
	nc := 0
	if l.cdim > 0 && dc != nil {
		nc = n * l.cdim
	}
	y0 := make([]float64, 2*nd+np+nc)
	copy(y0, zOut)
	copy(y0[nd:], dz)
	k := s.k
	w := dL
	if allZero(dL) {
		k, w = 0, nil // the trace term has no cotangent: skip its tangents
	}
	ws := l.net.newWork(n, k)
	ws.in = s.in
	var eps []float64
	if k > 0 {
		eps = s.eps
	}
	tr := make([]float64, n)
	g := func(t float64, y, dy []float64) {
		f := l.net.forward(s.p, t, y[:nd], s.c, eps, ws, tr)
		copy(dy[:nd], f)
		dpT, cbT := dy[2*nd:2*nd+np], dy[2*nd+np:]
		clear(dpT)
		clear(cbT)
		var cb []float64
		if nc > 0 {
			cb = cbT
		}
		l.net.backward(s.p, y[nd:2*nd], w, eps, ws, dpT, dy[nd:2*nd], cb)
		for i := nd; i < len(dy); i++ {
			dy[i] = -dy[i]
		}
	}
	y, st, err := l.cfg.Solver.solve(g, tb, ta, y0, nil)
	l.report(CNFStats{Pass: CNFBackward, ODEStats: st, Rows: n, Err: err, Penalty: s.in != traceIntegrand})
	if err != nil {
		fillNaN(y)
	}
	var cb []float64
	if nc > 0 {
		cb = y[2*nd+np:]
	}
	return l.finishPullback(y[nd:2*nd], y[2*nd:2*nd+np], cb, dp, dc)
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// CNFPenalty returns RNODE's regulariser (Finlay, Jacobsen, Nurbekyan and
// Oberman, "How to train your neural ODE", 2020) of the CNF layer that
// CNF(cfg) makes at widths dim and contextDim: given the layer's
// parameters p, its input rows x (data side; for a Flow whose bijection
// is the CNF, the data) and contexts c, it returns the mean over the rows
// of
//
//	R = Kinetic·∫₀ᵀ ‖f(z(t), t, c)‖² dt + Jacobian·∫₀ᵀ ‖∂f/∂z‖²_F dt
//
// along each row's trajectory (T = cfg.Time), and adds ∂R/∂p into dp.
// Small values mean straight, slowly varying trajectories, which the
// adaptive solver crosses in fewer steps. R is an extra ODE state beside
// z, solved from t = T down to 0 with cfg.Solver, and its gradient comes
// from cfg.Gradient's method, as the layer's do (the adjoint's with dz =
// 0 and the state's cotangent 1/n; or backpropagation through the
// steps). The Frobenius norm is exact (Σ_k ‖(∂f/∂z)e_k‖² over the unit
// vectors) where the layer's trace is (TraceExact, or TraceAuto up to 8
// columns), and Hutchinson's estimate ‖(∂f/∂z)ε‖² with the layer's ε
// otherwise (drawn as the layer made with key draws it; FixedNoise
// applies); the kinetic energy alone needs no tangents.
//
// It is a second solve of its own, whose cost Stats reports with Penalty
// set. cfg may differ from the layer's in Solver (a few RK4 steps estimate
// R for a fraction of the layer's evaluations), Gradient, Stats and the
// weights; it must match the layer in Hidden, Activation, Time, Trace and
// FixedNoise. The returned function is safe for concurrent use; a solve
// over its budget gives NaN, and NaN in dp. CNFPenalty returns an error
// for a configuration CNF refuses and when both weights are zero.
func CNFPenalty(key Key, cfg CNFConfig, dim, contextDim int) (func(p Params, x, c *mat.Dense, dp Params) float64, error) {
	l, err := newCNF(cfg, dim, contextDim)
	if err != nil {
		return nil, err
	}
	if l.cfg.Kinetic == 0 && l.cfg.Jacobian == 0 {
		return nil, fmt.Errorf("flows: CNFPenalty: both weights are zero")
	}
	_, l.noiseKey = key.Split2()
	// The state accumulates ∫_T^0 s dt = −∫_0^T s dt: s is −(the integrand).
	integ := odeIntegrand{kinetic: -l.cfg.Kinetic, frob: -l.cfg.Jacobian}
	T := l.cfg.Time
	return func(p Params, x, c *mat.Dense, dp Params) float64 {
		_, r, back := l.passWith("CNFPenalty", integ, p, x, c, T, 0, true)
		n := len(r)
		var sum float64
		for _, v := range r {
			sum += v
		}
		w := make([]float64, n)
		for i := range w {
			w[i] = 1 / float64(n)
		}
		back(mat.NewDense(n, l.dim, nil), w, dp, nil)
		return sum / float64(n)
	}, nil
}
