package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Conditional flows.
//
// A conditional flow models p(x | c): every layer may read a per-example
// context c (a matrix with one row per example, contextDim columns) besides
// its input, and the pullbacks return the gradient with respect to c as
// well. The conditional contract (CondBijection, CondInitFunc,
// CondDistribution) sits beside the unconditional one rather than inside
// it, so unconditional code is untouched: no context argument to thread
// through, no nil checks, no change to any existing layer. Layers without a
// conditioner (Reverse, ActNorm, InvertibleLinear, …) join a conditional
// stack through Conditional, which ignores c and returns a zero dc.
//
// The context is not transformed: z and log|det ∂z/∂x| are per example, as
// before, with c held fixed. log p(x | c) = log p_prior(Direct(x; c)) +
// logDet(x; c), and sampling given c maps prior draws through Inverse(·; c).

// CondPullback is the vector-Jacobian product of a conditional pass,
// returned by CondBijection.DirectVJP and InverseVJP. Given dz (n×dim) and
// dLogDet (length n), the gradients of a scalar loss L with respect to the
// pass's outputs, it adds dL/dparams into dp (len(dp) == len(p)) and returns
// dL/dx (n×dim) and dL/dc (n×contextDim), both new matrices, never nil. It
// reads but never modifies dz and dLogDet.
type CondPullback func(dz *mat.Dense, dLogDet []float64, dp Params) (dx, dc *mat.Dense)

// CondBijection is a bijection of dim-dimensional rows x conditioned on
// contextDim-dimensional rows c: for each fixed c it is invertible in x.
// Every function takes the context c (n×contextDim, one row per row of the
// batch) and is, like Bijection's, pure and safe for concurrent use, never
// modifying its arguments. Direct maps data to latent (density direction);
// Inverse maps latent to data (sampling direction); logDet[i] is
// log|det ∂z_i/∂x_i| at fixed c_i.
type CondBijection struct {
	// Direct maps each row of x (n×dim) given the same row of c.
	Direct func(p Params, x, c *mat.Dense) (z *mat.Dense, logDet []float64)

	// Inverse undoes Direct at the same c.
	Inverse func(p Params, z, c *mat.Dense) (x *mat.Dense, logDet []float64)

	// DirectVJP computes what Direct does and returns its pullback.
	DirectVJP func(p Params, x, c *mat.Dense) (z *mat.Dense, logDet []float64, back CondPullback)

	// InverseVJP computes what Inverse does and returns its pullback; nil
	// for layers that do not provide it.
	InverseVJP func(p Params, z, c *mat.Dense) (x *mat.Dense, logDet []float64, back CondPullback)

	// InitFromData, when not nil, is the data-dependent initialisation of
	// the layer (see Bijection.InitFromData), given the batch x and its
	// context c; it returns the batch as the layer then maps it.
	InitFromData func(p Params, x, c *mat.Dense) *mat.Dense

	// UpdateState, when not nil, updates non-trainable state in p from the
	// training batch (see Bijection.UpdateState) and returns the batch as
	// the layer maps it.
	UpdateState func(p Params, x, c *mat.Dense) *mat.Dense
}

// CondInitFunc makes a CondBijection for rows of width dim conditioned on
// rows of width contextDim ≥ 1. It returns the initial parameters (the same
// for the same key) and the bijection, or an error when the layer cannot
// work at those widths.
type CondInitFunc func(key Key, dim, contextDim int) (Params, CondBijection, error)

// CondDistPullback is the vector-Jacobian product of a conditional
// log-density: given dL/dlogp (length n) it adds dL/dparams into dp and
// returns dL/dx (n×dim) and dL/dc (n×contextDim), new matrices. It never
// modifies dLogp.
type CondDistPullback func(dLogp []float64, dp Params) (dx, dc *mat.Dense)

// CondDistribution is a parameterised conditional density p(x | c) over
// dim-dimensional rows x given contextDim-dimensional rows c. Its fields are
// pure functions, safe for concurrent use.
type CondDistribution struct {
	// LogPDF returns log p(x_i | c_i) for each row of x (n×dim) and c
	// (n×contextDim).
	LogPDF func(p Params, x, c *mat.Dense) []float64

	// Sample draws one row x_i ~ p(· | c_i) for each row of c: to draw m
	// samples given one context, repeat it m times. The same key,
	// parameters and contexts give the same rows.
	Sample func(key Key, p Params, c *mat.Dense) *mat.Dense

	// LogPDFVJP computes LogPDF and returns its pullback.
	LogPDFVJP func(p Params, x, c *mat.Dense) (logp []float64, back CondDistPullback)

	// InitFromData, when not nil, sets data-dependent parameters in p from
	// the batch x and its context c.
	InitFromData func(p Params, x, c *mat.Dense)

	// UpdateState, when not nil, updates non-trainable state in p from the
	// training batch x and its context c.
	UpdateState func(p Params, x, c *mat.Dense)
}

// CondDistInitFunc makes a CondDistribution over rows of width dim given
// contexts of width contextDim.
type CondDistInitFunc func(key Key, dim, contextDim int) (Params, CondDistribution, error)

// CondInitFromData runs the data-dependent initialisation of d (ActNorm's,
// anywhere in a CondFlow's stack) on the batch x with contexts c, setting
// parameters in p in place; it does nothing when d has none.
func CondInitFromData(d CondDistribution, p Params, x, c *mat.Dense) {
	if d.InitFromData != nil {
		d.InitFromData(p, x, c)
	}
}

// CondUpdateState updates the non-trainable state of d (BatchNorm's running
// averages) from the training batch x with contexts c; it does nothing when
// d has none.
func CondUpdateState(d CondDistribution, p Params, x, c *mat.Dense) {
	if d.UpdateState != nil {
		d.UpdateState(p, x, c)
	}
}

// checkContext panics with a flows: message when c is not n×cdim.
func checkContext(who string, c *mat.Dense, n, cdim int) {
	if c == nil {
		panic("flows: " + who + ": nil context")
	}
	if r, cc := c.Dims(); r != n || cc != cdim {
		panic(fmt.Sprintf("flows: %s: context is %d×%d, want %d×%d", who, r, cc, n, cdim))
	}
}

// checkContextDim returns an init error unless contextDim ≥ 1.
func checkContextDim(who string, contextDim int) error {
	if contextDim < 1 {
		return fmt.Errorf("flows: %s: context dimension %d, need at least 1 (use the unconditional layer without a context)", who, contextDim)
	}
	return nil
}

// Conditional lifts an unconditional layer into a conditional one that
// ignores the context: Direct(x; c) = layer.Direct(x), and the pullbacks
// return a zero dc. It lets layers without a conditioner (Reverse, ActNorm,
// InvertibleLinear, elementwise maps) join a CondSerial stack. Parameters,
// layout and initialisation are the layer's own; InitFromData and
// UpdateState carry over. Init returns the layer's errors and an error for
// contextDim < 1. The functions panic for a context that is not
// n×contextDim, like any conditional layer.
func Conditional(layer InitFunc) CondInitFunc {
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if layer == nil {
			return nil, CondBijection{}, fmt.Errorf("flows: Conditional: nil layer")
		}
		if err := checkContextDim("Conditional", contextDim); err != nil {
			return nil, CondBijection{}, err
		}
		p, b, err := layer(key, dim)
		if err != nil {
			return nil, CondBijection{}, err
		}
		return p, liftBijection(b, contextDim), nil
	}
}

// liftBijection is Conditional's CondBijection for b.
func liftBijection(b Bijection, cdim int) CondBijection {
	const who = "Conditional"
	rows := func(m *mat.Dense) int {
		if m == nil {
			panic("flows: " + who + ": nil batch")
		}
		n, _ := m.Dims()
		return n
	}
	liftBack := func(back Pullback, n int) CondPullback {
		return func(dz *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
			return back(dz, dLogDet, dp), mat.NewDense(n, cdim, nil)
		}
	}
	cb := CondBijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			checkContext(who, c, rows(x), cdim)
			return b.Direct(p, x)
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			checkContext(who, c, rows(z), cdim)
			return b.Inverse(p, z)
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			n := rows(x)
			checkContext(who, c, n, cdim)
			z, ld, back := b.DirectVJP(p, x)
			return z, ld, liftBack(back, n)
		},
	}
	if b.InverseVJP != nil {
		cb.InverseVJP = func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			n := rows(z)
			checkContext(who, c, n, cdim)
			x, ld, back := b.InverseVJP(p, z)
			return x, ld, liftBack(back, n)
		}
	}
	if b.InitFromData != nil {
		cb.InitFromData = func(p Params, x, c *mat.Dense) *mat.Dense {
			checkContext(who, c, rows(x), cdim)
			return b.InitFromData(p, x)
		}
	}
	if b.UpdateState != nil {
		cb.UpdateState = func(p Params, x, c *mat.Dense) *mat.Dense {
			checkContext(who, c, rows(x), cdim)
			return b.UpdateState(p, x)
		}
	}
	return cb
}

// CondSerial composes conditional layers as Serial composes layers: in the
// Direct direction x ↦ l_k(…l_1(x; c)…; c), every layer seeing the same
// context. Parameters are the layers' vectors concatenated in order; the
// log-det is the sum of the layers'. Since c enters every layer, the
// pullback's dc is the sum of the layers' dc. InitFromData and UpdateState
// thread the batch through the stack as Serial's do. An init error from
// layer i is returned as "flows: CondSerial layer i: …".
func CondSerial(layers ...CondInitFunc) CondInitFunc {
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if err := checkDim("CondSerial", dim, 1); err != nil {
			return nil, CondBijection{}, err
		}
		if err := checkContextDim("CondSerial", contextDim); err != nil {
			return nil, CondBijection{}, err
		}
		keys := key.Split(len(layers))
		bs := make([]CondBijection, len(layers))
		offs := make([]int, len(layers)+1)
		var p Params
		for i, init := range layers {
			if init == nil {
				return nil, CondBijection{}, fmt.Errorf("flows: CondSerial layer %d: nil layer", i)
			}
			pi, b, err := init(keys[i], dim, contextDim)
			if err != nil {
				return nil, CondBijection{}, fmt.Errorf("flows: CondSerial layer %d: %w", i, err)
			}
			bs[i] = b
			p = append(p, pi...)
			offs[i+1] = len(p)
		}
		return p, condSerial(bs, offs, dim, contextDim), nil
	}
}

func condSerial(bs []CondBijection, offs []int, dim, cdim int) CondBijection {
	const who = "CondSerial"
	np := offs[len(bs)]
	view := func(p Params, i int) Params { return p[offs[i]:offs[i+1]:offs[i+1]] }
	check := func(p Params, x, c *mat.Dense) int {
		checkParams(who, p, np)
		checkWidth(who, x, dim)
		n, _ := x.Dims()
		checkContext(who, c, n, cdim)
		return n
	}
	run := func(p Params, x, c *mat.Dense, inverse bool) (*mat.Dense, []float64) {
		n := check(p, x, c)
		total := make([]float64, n)
		for k := range bs {
			i, f := k, bs[k].Direct
			if inverse {
				i = len(bs) - 1 - k
				f = bs[i].Inverse
			}
			var ld []float64
			x, ld = f(view(p, i), x, c)
			addTo(total, ld)
		}
		return x, total
	}
	runVJP := func(p Params, x, c *mat.Dense, inverse bool) (*mat.Dense, []float64, CondPullback) {
		n := check(p, x, c)
		total := make([]float64, n)
		backs := make([]CondPullback, len(bs))
		order := make([]int, len(bs))
		for k := range bs {
			i, f := k, bs[k].DirectVJP
			if inverse {
				i = len(bs) - 1 - k
				f = bs[i].InverseVJP
			}
			order[k] = i
			var ld []float64
			x, ld, backs[k] = f(view(p, i), x, c)
			addTo(total, ld)
		}
		back := func(dz *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
			checkPullback(who, dz, dLogDet, dp, n, dim, np)
			// Every log-det enters the total with weight one, so each
			// layer receives dLogDet unchanged; c feeds every layer, so
			// the layers' dc add up.
			dc := mat.NewDense(n, cdim, nil)
			for k := len(bs) - 1; k >= 0; k-- {
				var dck *mat.Dense
				dz, dck = backs[k](dz, dLogDet, view(dp, order[k]))
				dc.Add(dc, dck)
			}
			return dz, dc
		}
		return x, total, back
	}
	b := CondBijection{
		Direct:  func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) { return run(p, x, c, false) },
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) { return run(p, z, c, true) },
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			return runVJP(p, x, c, false)
		},
	}
	hasInverseVJP := true
	for _, l := range bs {
		hasInverseVJP = hasInverseVJP && l.InverseVJP != nil
	}
	if hasInverseVJP {
		b.InverseVJP = func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			return runVJP(p, z, c, true)
		}
	}
	hook := func(get func(CondBijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense) func(Params, *mat.Dense, *mat.Dense) *mat.Dense {
		found := false
		for _, l := range bs {
			found = found || get(l) != nil
		}
		if !found {
			return nil
		}
		return func(p Params, x, c *mat.Dense) *mat.Dense {
			check(p, x, c)
			for i, l := range bs {
				if h := get(l); h != nil {
					x = h(view(p, i), x, c)
				} else {
					x, _ = l.Direct(view(p, i), x, c)
				}
			}
			return x
		}
	}
	b.InitFromData = hook(func(l CondBijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense { return l.InitFromData })
	b.UpdateState = hook(func(l CondBijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense { return l.UpdateState })
	return b
}

// CondInvert swaps the directions of a conditional layer, as Invert does:
// a conditional IAF is CondInvert(CondMAF(cfg)). Init returns an error when
// the layer has no InverseVJP.
func CondInvert(layer CondInitFunc) CondInitFunc {
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		p, b, err := layer(key, dim, contextDim)
		if err != nil {
			return nil, CondBijection{}, err
		}
		if b.InverseVJP == nil {
			return nil, CondBijection{}, fmt.Errorf("flows: CondInvert: the layer has no InverseVJP, so its inverse cannot be trained")
		}
		return p, CondBijection{Direct: b.Inverse, Inverse: b.Direct, DirectVJP: b.InverseVJP, InverseVJP: b.DirectVJP}, nil
	}
}

// CondAffineCoupling is AffineCoupling conditioned on a context: the
// conditioner sees the row [x1 | c], so with d1 = dim/2, d2 = dim − d1,
//
//	[raw | t] = net([x1 | c])      (net: d1 + contextDim → 2·d2 columns)
//	s  = S·tanh(raw/S)             (S = 3)
//	z1 = x1,   z2 = x2·exp(s) + t,   logDet = Σ_j s_j,
//
// with AffineCoupling's Inverse and gradients, and dc read off the net's
// input gradient. The parameters are exactly the net's (made with
// in = d1 + contextDim, out = 2·d2), so an MLP conditioner starts the layer
// as the identity. Init returns an error for dim < 2 or contextDim < 1.
func CondAffineCoupling(net NetInitFunc) CondInitFunc {
	return CondAffineCouplingBound(net, affineCouplingBound)
}

// CondAffineCouplingBound is CondAffineCoupling with the log-scale bounded
// by bound instead of 3 (see AffineCouplingBound).
func CondAffineCouplingBound(net NetInitFunc, bound float64) CondInitFunc {
	const who = "CondAffineCoupling"
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if !(bound > 0) || math.IsInf(bound, 1) {
			return nil, CondBijection{}, fmt.Errorf("flows: %s: log-scale bound %v, want positive and finite", who, bound)
		}
		return newCondCoupling(who, net, key, dim, contextDim, affineKernel(bound))
	}
}

// CondAffineCouplingSplit is AffineCouplingSplit conditioned on a context:
// both the scale and the shift nets see [x1 | c] (each made with
// in = d1 + contextDim, out = d2). Parameter layout: [scale net's | shift
// net's], as in AffineCouplingSplit.
func CondAffineCouplingSplit(scale, shift NetInitFunc) CondInitFunc {
	const who = "CondAffineCouplingSplit"
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if scale == nil || shift == nil {
			return nil, CondBijection{}, fmt.Errorf("flows: %s: nil scale or shift net", who)
		}
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, CondBijection{}, err
		}
		d1, d2, err := couplingDims(who, dim)
		if err != nil {
			return nil, CondBijection{}, err
		}
		keys := key.Split(2)
		ps, ns, err := initConditioner(who, "scale conditioner", scale, keys[0], d1+contextDim, d2)
		if err != nil {
			return nil, CondBijection{}, err
		}
		pt, nt, err := initConditioner(who, "shift conditioner", shift, keys[1], d1+contextDim, d2)
		if err != nil {
			return nil, CondBijection{}, err
		}
		p := make(Params, 0, len(ps)+len(pt))
		p = append(append(p, ps...), pt...)
		net := concatNets(who, "scale conditioner", "shift conditioner", ns, nt, len(ps), d2, d2)
		c := &coupling{who: who, net: net, dim: dim, d1: d1, d2: d2, np: len(p), k: affineKernel(affineCouplingBound), cdim: contextDim}
		return p, c.condBijection(), nil
	}
}

// CondAdditiveCoupling is AdditiveCoupling conditioned on a context: the
// shift is t = net([x1 | c]) (net: d1 + contextDim → d2 columns), z2 = x2 + t,
// logDet = 0. Parameters are exactly the net's.
func CondAdditiveCoupling(net NetInitFunc) CondInitFunc {
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		return newCondCoupling("CondAdditiveCoupling", net, key, dim, contextDim, additiveKernel)
	}
}

// newCondCoupling is newCoupling with a context: its conditioner is made
// with d1 + contextDim input columns and reads [u1 | c]. Any coupling
// kernel (affine, additive, spline, mixture) becomes conditional this way.
func newCondCoupling(who string, net NetInitFunc, key Key, dim, contextDim int, k couplingKernel) (Params, CondBijection, error) {
	if net == nil {
		return nil, CondBijection{}, fmt.Errorf("flows: %s: nil net", who)
	}
	if err := checkContextDim(who, contextDim); err != nil {
		return nil, CondBijection{}, err
	}
	d1, d2, err := couplingDims(who, dim)
	if err != nil {
		return nil, CondBijection{}, err
	}
	p, nt, err := initConditioner(who, "conditioner", net, key, d1+contextDim, k.width*d2)
	if err != nil {
		return nil, CondBijection{}, err
	}
	c := &coupling{who: who, net: nt, dim: dim, d1: d1, d2: d2, np: len(p), k: k, cdim: contextDim}
	return p, c.condBijection(), nil
}

// condBijection returns a conditional coupling's functions, all four
// through forwardCtx.
func (c *coupling) condBijection() CondBijection {
	return CondBijection{
		Direct: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := c.forwardCtx(p, x, ctx, false, false)
			return z, ld
		},
		Inverse: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := c.forwardCtx(p, z, ctx, true, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			return c.forwardCtx(p, x, ctx, false, true)
		},
		InverseVJP: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64, CondPullback) {
			return c.forwardCtx(p, z, ctx, true, true)
		},
	}
}

// CondFlow is the conditional distribution of x = f⁻¹(z; c) for z drawn
// from prior, f the conditional bijection's Direct map:
//
//	log p(x | c) = log p_prior(Direct(x; c)) + logDet(x; c),
//
// and Sample(key, p, c) draws one z per row of c and maps it through
// Inverse(·; c). The prior does not see the context: all of the dependence
// on c is in the conditional layers. Parameter layout: [bijection's |
// prior's]. The pullback reaches both, through the output and the log-det,
// and returns dx and dc. Init returns an error for contextDim < 1.
func CondFlow(bijection CondInitFunc, prior DistInitFunc) CondDistInitFunc {
	return func(key Key, dim, contextDim int) (Params, CondDistribution, error) {
		if err := checkContextDim("CondFlow", contextDim); err != nil {
			return nil, CondDistribution{}, err
		}
		kb, kp := key.Split2()
		pb, b, err := bijection(kb, dim, contextDim)
		if err != nil {
			return nil, CondDistribution{}, fmt.Errorf("flows: CondFlow bijection: %w", err)
		}
		pp, prior, err := prior(kp, dim)
		if err != nil {
			return nil, CondDistribution{}, fmt.Errorf("flows: CondFlow prior: %w", err)
		}
		nb := len(pb)
		np := nb + len(pp)
		p := make(Params, 0, np)
		p = append(append(p, pb...), pp...)
		split := func(p Params) (Params, Params) {
			checkParams("CondFlow", p, np)
			return p[:nb:nb], p[nb:]
		}
		d := CondDistribution{
			LogPDF: func(p Params, x, c *mat.Dense) []float64 {
				bp, priorp := split(p)
				z, ld := b.Direct(bp, x, c)
				lp := prior.LogPDF(priorp, z)
				addTo(lp, ld)
				return lp
			},
			Sample: func(key Key, p Params, c *mat.Dense) *mat.Dense {
				bp, priorp := split(p)
				if c == nil {
					panic("flows: CondFlow: nil context")
				}
				n, _ := c.Dims()
				x, _ := b.Inverse(bp, prior.Sample(key, priorp, n), c)
				return x
			},
			LogPDFVJP: func(p Params, x, c *mat.Dense) ([]float64, CondDistPullback) {
				bp, priorp := split(p)
				z, ld, bback := b.DirectVJP(bp, x, c)
				lp, pback := prior.LogPDFVJP(priorp, z)
				addTo(lp, ld)
				return lp, func(dLogp []float64, dp Params) (*mat.Dense, *mat.Dense) {
					checkParams("CondFlow pullback", dp, np)
					// log p = prior(z) + logDet: the prior gives dL/dz and
					// the log-det receives dLogp unchanged; the prior does
					// not see c, so all of dc comes from the bijection.
					dz := pback(dLogp, dp[nb:])
					return bback(dz, dLogp, dp[:nb:nb])
				}
			},
		}
		if b.InitFromData != nil {
			d.InitFromData = func(p Params, x, c *mat.Dense) {
				bp, _ := split(p)
				b.InitFromData(bp, x, c)
			}
		}
		if b.UpdateState != nil {
			d.UpdateState = func(p Params, x, c *mat.Dense) {
				bp, _ := split(p)
				b.UpdateState(bp, x, c)
			}
		}
		return p, d, nil
	}
}
