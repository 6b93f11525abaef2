package flows

import (
	"fmt"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// NeuralSplineAutoregressive returns a rational-quadratic neural spline
// autoregressive layer, RQ-NSF (AR) of Durkan, Bekasov, Murray and
// Papamakarios, "Neural Spline Flows" (2019): each input goes through its
// own monotonic rational-quadratic spline (see SplineConfig) whose knots a
// MADE (see MADE for made, the masks and the ordering) computes from the
// inputs before it in the ordering.
//
// With K = cfg.Bins and P = cfg.NumParams() = 3K−1 knot parameters per
// input, the MADE is made with in = dim and out = P·dim columns, and input
// i's parameters θ_i are its outputs for i, which depend only on the inputs
// before i:
//
//	θ_i[k] = MADE(x)[k·dim + i],   k = 0, …, P−1
//	z_i    = g(x_i; θ_i)           (identity outside [−B, B])
//	logDet = Σ_i log g′(x_i; θ_i)
//
// with θ_i laid out as every spline of this package, [widths (K) |
// heights (K) | interior slopes (K−1)]: MADE output column k·dim + i is
// the width k of input i for k < K, its height k−K for K ≤ k < 2K, and its
// slope k−2K for 2K ≤ k < P.
//
// Direct, the density direction, is one parallel pass of the MADE.
// Inverse, the sampling direction, computes x_i = g⁻¹(z_i; θ_i), with
// logDet = −Σ_i log g′(x_i; θ_i), one position of the ordering at a time,
// dim sequential steps, since θ_i needs the inputs before i. As in MAF,
// each step computes only what has just become computable (the hidden units
// whose degree is the position just filled, and the P outputs of the next
// input), so the dim steps together cost about one MADE pass restricted to
// its unmasked weights, and the buffers are allocated once per call.
//
// Parameters: exactly those of MADE(made)(key, dim, P·dim), the same values
// for the same key, in MADE's layout: [W_0 (dim×h_0) | b_0 | … |
// W_L (h_{L−1}×P·dim) | b_L], masked entries unused and with zero gradient.
// The MADE's last layer is zero at init, so θ = 0 (uniform bins, unit
// slopes) and the layer starts as the identity (up to rounding, a few ulps
// of B).
//
// Stack these layers with a permutation (Reverse, Shuffle) between them, or
// give them different orders, so that every input is conditioned on the
// others somewhere in the stack. dim 1 is allowed: the one spline's knots
// are then free parameters (the MADE's last biases), an unconditional
// elementwise spline.
//
// DirectVJP and InverseVJP are both provided, each as cheap as its forward
// pass; Invert(NeuralSplineAutoregressive(…)) is the inverse autoregressive
// spline flow, fast to sample, and trains through InverseVJP.
//
// Outside [−B, B] each spline is the identity, so inputs of any finite size
// are mapped without overflow; MADE outputs that are not finite (only an
// overflowing net produces them) are read as +Inf → MaxFloat64,
// −Inf → −MaxFloat64 and NaN → 0 and receive zero gradient, as in
// NeuralSplineCoupling: outputs and log-dets are finite for every finite
// input. A MADE that overflows (unbounded activations on inputs near
// 1e300, Tanh does not) gives NaN weight gradients in its own pullback,
// and, since its dense pass multiplies masked zeros by the overflowed
// activations (0·Inf = NaN) where the incremental pass skips them, Direct
// and Inverse then no longer undo each other exactly on such rows.
//
// Init returns an error starting "flows: NeuralSplineAutoregressive:" for
// dim < 1, an invalid cfg (wrapping SplineConfig's error) or a bad made (see
// MADE). The functions panic for a batch without dim columns or parameters
// of the wrong length. The pullbacks keep private copies of what they need,
// so they may be called after the batch or the parameters change, any
// number of times, from any goroutine.
func NeuralSplineAutoregressive(made MADEConfig, cfg SplineConfig) InitFunc {
	const who = "NeuralSplineAutoregressive"
	made.Hidden = slices.Clone(made.Hidden) // the caller may reuse its slice
	return func(key Key, dim int) (Params, Bijection, error) {
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if err := cfg.validate(); err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		c := cfg.withDefaults()
		P := c.NumParams()
		p, m, err := newMADE(who, made, key, dim, P*dim)
		if err != nil {
			return nil, Bijection{}, err
		}
		f := &splineAR{m: m, dim: dim, np: P, cfg: c}
		return p, Bijection{
			Direct: func(p Params, x *mat.Dense) (*mat.Dense, []float64) {
				z, ld, _ := f.direct(p, x, false)
				return z, ld
			},
			Inverse: func(p Params, z *mat.Dense) (*mat.Dense, []float64) {
				x, ld, _ := f.inverse(p, z, false)
				return x, ld
			},
			DirectVJP: func(p Params, x *mat.Dense) (*mat.Dense, []float64, Pullback) {
				return f.direct(p, x, true)
			},
			InverseVJP: func(p Params, z *mat.Dense) (*mat.Dense, []float64, Pullback) {
				return f.inverse(p, z, true)
			},
		}, nil
	}
}

// splineARWho names NeuralSplineAutoregressive in panics.
const splineARWho = "NeuralSplineAutoregressive"

// splineAR holds a NeuralSplineAutoregressive layer's immutable shape: its
// MADE (dim → np·dim), np = 3K−1 knot parameters per input, and the spline
// configuration (after withDefaults).
type splineAR struct {
	m       *madeNet
	dim, np int
	cfg     SplineConfig
}

// gather copies the np knot parameters of one spline, src[0], src[stride],
// …, src[(np−1)·stride], into dst (length np) and replaces non-finite
// entries as splineTheta does; it reports whether any was replaced.
func (f *splineAR) gather(dst, src []float64, stride int) (fixed bool) {
	for k := range dst {
		dst[k] = src[k*stride]
	}
	return splineSanitize(dst, dst)
}

// scatter copies the gradient dth (length np) of one spline into dst[0],
// dst[stride], …, zeroing the entries whose conditioner output, src[k·stride],
// is not finite.
func (f *splineAR) scatter(dst, dth, src []float64, stride int, fixed bool) {
	for k, v := range dth {
		if fixed {
			if s := src[k*stride]; s-s != 0 {
				v = 0
			}
		}
		dst[k*stride] = v
	}
}

// buffers returns two scratch slices of np entries: on the caller's stack
// array when it is long enough (K ≤ rqsStackBins), else new.
func (f *splineAR) buffers(arr []float64) (th, dth []float64) {
	if 2*f.np > len(arr) {
		arr = make([]float64, 2*f.np)
	}
	return arr[:f.np:f.np], arr[f.np : 2*f.np : 2*f.np]
}

// direct is Direct (and, when vjp, DirectVJP): one dense MADE pass, then
// one spline per entry. Row r of the MADE output holds input i's θ at
// columns k·dim + i, so the knots of one spline are gathered with stride
// dim.
func (f *splineAR) direct(p Params, x *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	z, ld, back := f.directCtx(splineARWho, p, x, nil, vjp)
	return z, ld, withoutContext(back)
}

// inverse is Inverse (and, when vjp, InverseVJP): dim sequential steps of
// the incremental MADE evaluation (see MAF's inverse). At step b
// (b = 1, …, dim) the input i = perm[b−1] at position b−1 (degree b) is
// set from the P outputs of degree b, which depend only on the inputs
// already set,
//
//	x_i = g⁻¹(z_i; θ_i),   logDet −= log g′(x_i; θ_i),
//
// and then the hidden units of degree b, which have just become
// computable, are computed.
//
// The pullback is reverse-mode differentiation through exactly these steps,
// in reverse, as for MAF: at step b,
//
//  1. the hidden groups of degree b are pulled back (top layer first),
//     completing dL/dx_i (the caller's dx plus what the later steps, whose
//     knots read x_i, added);
//  2. the spline's inverse pullback (rqsInverseVJP, the implicit-function
//     theorem for one scalar: ∂x_i/∂z_i = 1/g′, ∂x_i/∂θ_i = −(∂g/∂θ_i)/g′,
//     and the log-det term through ℓ = log g′) gives dz_i and dL/dθ_i;
//  3. dL/dθ_i is pulled back through the output group of degree b into the
//     parameters and the hidden units of degree < b.
//
// Equivalently, x = Direct⁻¹(z) solves a triangular system and this sweep
// is the back-substitution with the transposed Jacobian that the
// implicit-function theorem gives, done without forming the Jacobian. The
// pullback costs one incremental pass, like the forward.
func (f *splineAR) inverse(p Params, z *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	x, ld, back := f.inverseCtx(splineARWho, p, z, nil, vjp)
	return x, ld, withoutContext(back)
}

// withoutContext turns the pullback of a pass without context (m.cdim 0,
// dc nil) into a plain Pullback; nil stays nil.
func withoutContext(back CondPullback) Pullback {
	if back == nil {
		return nil
	}
	return func(dz *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
		dx, _ := back(dz, dLogDet, dp)
		return dx
	}
}

// CondNeuralSplineAutoregressive is the conditional form of
// NeuralSplineAutoregressive: the MADE also reads the context c
// (contextDim columns, degree 0 in the mask recipe, so every output may
// depend on it), as in CondMAF, entering every first-layer unit and, when
// made has hidden layers, every output directly, so that
//
//	θ_i[k] = MADE(x; c)[k·dim + i],   k = 0, …, P−1
//	z_i    = g(x_i; θ_i),   logDet = Σ_i log g′(x_i; θ_i),
//
// with NeuralSplineAutoregressive's splines, output layout, dense Direct,
// sequential Inverse (the context terms are computed once per call and
// added to the pre-activations at each step), handling of non-finite MADE
// outputs, and both pullbacks, which also return dc.
//
// Parameter layout: NeuralSplineAutoregressive's (the MADE's, made with
// in = dim, out = P·dim), followed by the context weights
//
//	[… | Wc_0 (contextDim×h_0) | Wc_L (contextDim×P·dim)]
//
// (only [… | Wc_0 (contextDim×P·dim)] without hidden layers), entering as
// pre-activation += c·Wc. The weights into the outputs start at zero, as
// does the MADE's last layer, so θ = 0 for every context and the layer
// starts as the identity (up to rounding, a few ulps of B) whatever the
// context. The direct context weights into the outputs are what lets the
// knots of the first input of the ordering, which no hidden unit reaches,
// depend on c; with dim 1 the one spline's knots are an affine function of
// c.
//
// DirectVJP and InverseVJP are both provided, so
// CondInvert(CondNeuralSplineAutoregressive(…)) is the conditional inverse
// autoregressive spline flow and trains through InverseVJP.
//
// Init returns an error starting "flows: CondNeuralSplineAutoregressive:"
// for dim < 1, contextDim < 1, an invalid cfg (wrapping SplineConfig's
// error) or a bad made (see MADE). The functions panic for a batch without
// dim columns, a context that is not n×contextDim, or parameters of the
// wrong length. The pullbacks keep private copies of what they need, so
// they may be called after the batch, the context or the parameters
// change, any number of times, from any goroutine.
func CondNeuralSplineAutoregressive(made MADEConfig, cfg SplineConfig) CondInitFunc {
	const who = "CondNeuralSplineAutoregressive"
	made.Hidden = slices.Clone(made.Hidden) // the caller may reuse its slice
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if err := checkDim(who, dim, 1); err != nil {
			return nil, CondBijection{}, err
		}
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, CondBijection{}, err
		}
		if err := cfg.validate(); err != nil {
			return nil, CondBijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		c := cfg.withDefaults()
		P := c.NumParams()
		p, m, err := newCondMADE(who, made, key, dim, P*dim, contextDim)
		if err != nil {
			return nil, CondBijection{}, err
		}
		f := &splineAR{m: m, dim: dim, np: P, cfg: c}
		return p, CondBijection{
			Direct: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64) {
				z, ld, _ := f.directCtx(who, p, x, ctx, false)
				return z, ld
			},
			Inverse: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64) {
				x, ld, _ := f.inverseCtx(who, p, z, ctx, false)
				return x, ld
			},
			DirectVJP: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64, CondPullback) {
				return f.directCtx(who, p, x, ctx, true)
			},
			InverseVJP: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64, CondPullback) {
				return f.inverseCtx(who, p, z, ctx, true)
			},
		}, nil
	}
}

// directCtx is direct for the conditional layer (who names it in panics):
// the MADE's pre-activations gain the context terms (see newCondMADE), and
// the pullback also returns dc, from the MADE's backwardCtx.
func (f *splineAR) directCtx(who string, p Params, x, ctx *mat.Dense, vjp bool) (*mat.Dense, []float64, CondPullback) {
	m, dim, np, c := f.m, f.dim, f.np, f.cfg
	checkParams(who, p, m.np)
	checkWidth(who, x, dim)
	xs, n, _ := rawRows(x)
	var cs []float64 // nil for the unconditional layer (m.cdim 0)
	if m.cdim > 0 {
		checkContext(who, ctx, n, m.cdim)
		cs, _, _ = rawRows(ctx)
	}
	y, tape := m.forwardCtx(p, xs, cs, n, vjp)
	w := np * dim // MADE output columns
	z := make([]float64, n*dim)
	ld := make([]float64, n)
	var arr [6 * rqsStackBins]float64
	th, _ := f.buffers(arr[:])
	for r := 0; r < n; r++ {
		yr := y[r*w : (r+1)*w]
		xr := xs[r*dim : (r+1)*dim]
		zr := z[r*dim : (r+1)*dim]
		sum := 0.0
		for i, xi := range xr {
			f.gather(th, yr[i:], dim)
			v, l := c.rqsForward(th, xi)
			zr[i] = v
			sum += l
		}
		ld[r] = sum
	}
	if !vjp {
		return mat.NewDense(n, dim, z), ld, nil
	}
	// The tape holds private copies of x (its inputs[0]) and of the
	// context; y is ours.
	xc := tape.inputs[0]
	back := func(dz *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
		checkPullback(who, dz, dLogDet, dp, n, dim, m.np)
		// z_i = g(x_i; θ_i(x_<i, c)), so with g_i = dL/dz_i and
		// gl = dL/dlogDet the spline's pullback gives the diagonal term
		// ∂L/∂x_i at fixed θ and dL/dθ_i; the MADE pulls dy = [dL/dθ] back
		// to the parameters, to x (the strictly triangular part of ∂z/∂x)
		// and to c, and the two x terms are added.
		g, _, _ := rawRows(dz)
		var arr [6 * rqsStackBins]float64
		th, dth := f.buffers(arr[:])
		dy := make([]float64, n*w)
		ddiag := make([]float64, n*dim)
		for r := 0; r < n; r++ {
			yr := y[r*w : (r+1)*w]
			gl := dLogDet[r]
			for i := 0; i < dim; i++ {
				fixed := f.gather(th, yr[i:], dim)
				clear(dth)
				_, _, ddiag[r*dim+i] = c.rqsForwardVJP(th, xc[r*dim+i], g[r*dim+i], gl, dth)
				f.scatter(dy[r*w+i:], dth, yr[i:], dim, fixed)
			}
		}
		dx, dctx := m.backwardCtx(tape, dy, dp)
		for k, v := range ddiag {
			dx[k] += v
		}
		if m.cdim == 0 {
			return mat.NewDense(n, dim, dx), nil
		}
		if dctx == nil { // n == 0 rows
			dctx = make([]float64, n*m.cdim)
		}
		return mat.NewDense(n, dim, dx), mat.NewDense(n, m.cdim, dctx)
	}
	return mat.NewDense(n, dim, z), ld, back
}

// inverseCtx is inverse for the conditional layer (who names it in
// panics): the incremental evaluation is given the context once
// (setContext) before the dim sequential steps, and the pullback, after
// the reverse sweep, turns the gradients of the context terms into dWc and
// dc (ctxBack).
func (f *splineAR) inverseCtx(who string, p Params, z, ctx *mat.Dense, vjp bool) (*mat.Dense, []float64, CondPullback) {
	m, dim, np, c := f.m, f.dim, f.np, f.cfg
	checkParams(who, p, m.np)
	checkWidth(who, z, dim)
	zs, n, _ := rawRows(z)
	cd := m.cdim
	var cs []float64 // nil for the unconditional layer (cd 0)
	if cd > 0 {
		checkContext(who, ctx, n, cd)
		cs, _, _ = rawRows(ctx)
	}
	s := m.newInc(p, n, vjp)
	if cd > 0 {
		s.setContext(p, cs)
	}
	ld := make([]float64, n)
	var thKeep, zc []float64
	if vjp {
		thKeep = make([]float64, dim*np*n)
		zc = slices.Clone(zs[:n*dim])
	}
	var arr [6 * rqsStackBins]float64
	th, _ := f.buffers(arr[:])
	xT := s.lv[0]
	for b := 1; b <= dim; b++ {
		o := s.output(b)
		i := m.perm[b-1]
		xrow := xT[(b-1)*n : b*n]
		for r := range xrow {
			f.gather(th, o[r:], n)
			v, l := c.rqsInverse(th, zs[r*dim+i])
			xrow[r] = v
			ld[r] += l
		}
		if vjp {
			copy(thKeep[(b-1)*np*n:b*np*n], o[:np*n])
		}
		if b < dim {
			s.hidden(b)
		}
	}
	x := make([]float64, n*dim)
	for t, i := range m.perm {
		for r, v := range xT[t*n : (t+1)*n] {
			x[r*dim+i] = v
		}
	}
	if !vjp {
		return mat.NewDense(n, dim, x), ld, nil
	}
	back := func(dx *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
		checkPullback(who, dx, dLogDet, dp, n, dim, m.np)
		g, _, _ := rawRows(dx)
		gb := s.newBack()
		gxT := gb.grad[0]
		for t, i := range m.perm {
			row := gxT[t*n : (t+1)*n]
			for r := range row {
				row[r] = g[r*dim+i]
			}
		}
		var arr [6 * rqsStackBins]float64
		th, dth := f.buffers(arr[:])
		dz := make([]float64, n*dim)
		gO := make([]float64, np*n)
		for b := dim; b >= 1; b-- {
			if b < dim {
				s.backHidden(gb, b, dp)
			}
			i := m.perm[b-1]
			ob := thKeep[(b-1)*np*n : b*np*n]
			for r, gr := range gxT[(b-1)*n : b*n] {
				fixed := f.gather(th, ob[r:], n)
				clear(dth)
				_, _, dz[r*dim+i] = c.rqsInverseVJP(th, zc[r*dim+i], gr, dLogDet[r], dth)
				f.scatter(gO[r:], dth, ob[r:], n, fixed)
			}
			s.backOutput(gb, b, gO, dp)
		}
		if cd == 0 {
			return mat.NewDense(n, dim, dz), nil
		}
		dc := make([]float64, n*cd)
		s.ctxBack(gb, dp, dc)
		return mat.NewDense(n, dim, dz), mat.NewDense(n, cd, dc)
	}
	return mat.NewDense(n, dim, x), ld, back
}
