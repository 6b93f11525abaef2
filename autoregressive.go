package flows

// The masked autoregressive layer, written once over any Transformer.
//
// Direct, the density direction, is one dense pass of the MADE followed by
// one transformer per element. Inverse, the sampling direction, runs dim
// sequential steps of the MADE's incremental evaluation (madeinc.go): at
// step b (b = 1, …, dim) the input i = perm[b−1] at position b−1 (degree
// b) is set from the P outputs of degree b, which depend only on the
// inputs already set,
//
//	x_i = f⁻¹(z_i; θ_i),   logDet += log|∂x_i/∂z_i|,
//
// and then the hidden units of degree b, which have just become computable,
// are computed. So all dim steps together cost about one MADE pass
// restricted to its unmasked weights, not dim passes. Rows are independent:
// the steps run over chunks of arChunk rows, so that a chunk's hidden values
// stay in cache while every step's products read them; without a pullback
// one set of buffers serves every chunk, and the weights are rearranged
// once per call.
//
// The inverse's pullback is reverse-mode differentiation through exactly
// these steps, in reverse: each quantity (input, hidden group, output group)
// is computed once, so the reverse sweep visits them in the reverse of the
// order they were computed, and the gradient of each is complete when it is
// visited. At step b, in reverse:
//
//  1. the hidden groups of degree b are pulled back (top layer first),
//     completing dL/dx_i (the caller's dx plus what the later steps, whose
//     parameters read x_i, added);
//  2. the transformer's inverse pullback gives dz_i and dL/dθ_i;
//  3. dL/dθ_i is pulled back through the output group of degree b into the
//     parameters and the hidden units of degree < b.
//
// Equivalently, by the implicit-function theorem on Direct(x, θ) = z, with
// J = ∂z/∂x triangular in the ordering, the sweep is the back-substitution
// of Jᵀ·dz = dx + gl·∂(log-det)/∂x, done without forming J: the pullback
// costs one incremental pass, like the forward.
//
// The MADE is made with in = dim and out = P·dim columns (P = t.Params),
// and θ_i[k] = MADE(x; c)[k·dim + i]: input i's parameters are its outputs
// for i, which depend only on the inputs before i (and on c), so
//
//	z_i = f(x_i; θ_i),   logDet = Σ_i log f′(x_i; θ_i)
//
// and Inverse computes x_i = f⁻¹(z_i; θ_i) as above. Non-finite MADE
// outputs are replaced before the transformer sees them and get no
// gradient (see transformer.go's file comment). With dim 1 the one
// transformer's parameters are the MADE's last biases (and a function of c
// through its context weights). Stacked layers need a permutation or
// different orders between them so that every input is conditioned on the
// others somewhere in the stack.
//
// The context, when there is one, enters the MADE's first and last layers
// (see addContext); each chunk's context terms are computed once
// (setContext) and added at each step, and the pullback turns their
// gradients into dWc and dc (ctxBack).

import (
	"slices"

	"gonum.org/v1/gonum/mat"
)

// arChunk is the number of rows the sequential inverse sweeps at a time:
// a chunk's hidden values (width × arChunk) stay in cache across the dim
// steps, while the products stay wide enough to run at full speed.
const arChunk = 256

// MaskedAutoregressive returns a masked autoregressive layer (Papamakarios
// et al., 2017; Durkan et al., 2019): each input goes through the
// transformer t, z_i = f(x_i; θ_i), with θ_i from a MADE made by made that
// reads the inputs before i in the ordering (and the context, if any).
//
// With P = t.Params, the MADE has in = dim and out = P·dim columns, and
// θ_i[k] = MADE(x; c)[k·dim + i]. The parameters are exactly the MADE's, in
// its layout (see MADE), followed by its context weights when
// contextDim > 0 (see MAF). The layer starts as the identity for every
// transformer of this package, whatever the context. Direct (density) is
// one parallel pass of the MADE; Inverse (sampling) takes dim sequential
// steps costing about one pass in all (see autoregressive.go's file
// comment). Invert(MaskedAutoregressive(…)), the inverse autoregressive
// flow, is fast to sample. Stack these layers with a permutation (Reverse,
// Shuffle) between them, or give them different orders. dim 1 is allowed.
//
// The MADE's outputs, and so θ, grow linearly with inputs and contexts far
// from the training rows (its context weights also reach its output
// layer, and ReLU units are unbounded): a transformer whose map goes flat
// as θ grows (LogisticMixture, DeepSigmoidal, CircularSpline) then loses
// its inverse in float64 (DeepSigmoidal(4, 2) with |c| = 1e3: a relative
// round-trip error of 1e9, issue 26). Transformers that bound their own
// parameters and act on a bulk with tails outside keep it: Bernstein and
// DeepSigmoidalBounded to 1e-9 relative, Spline to 1e-7 (its smallest bins
// and slopes amplify rounding) at |c| up to 1e8.
//
// Init returns an error for dim < 1, a negative contextDim, a bad made (see
// MADE) or a transformer without its functions. The functions panic for a
// batch without dim columns, a context that is not n×contextDim, or
// parameters of the wrong length. DirectVJP and InverseVJP are both
// provided, each as cheap as its forward pass; the pullbacks keep private
// copies of the batch and the context, so they may be called after those
// change, any number of times, from any goroutine. InverseVJP's pullback
// keeps what it needs of the parameters too; DirectVJP's reads p, which,
// as for MLP, must not change until its last call (take the optimiser step
// after the backward pass). Prepare gives the layer at fixed parameters
// (see PreparedBijection).
func MaskedAutoregressive(made MADEConfig, t Transformer) InitFunc {
	made.Hidden = slices.Clone(made.Hidden) // the caller may reuse its slice
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newAutoregressive("MaskedAutoregressive", made, key, dim, contextDim, t, nil)
	}
}

// autoregressive holds a masked autoregressive layer's immutable shape.
type autoregressive struct {
	who string
	m   *madeNet
	t   Transformer
	dim int
	at  elementParams // where θ_i sits in a row of the MADE's output
	// mafS, when positive, says the layer is MAF with log-scale bound
	// mafS: its elementwise work then runs mafaffine.go's loops.
	mafS float64
}

// newAutoregressive makes the layer; who names it in errors and panics.
// θ_i[k] is the MADE's output for input i at block order[k] (block k when
// order is nil).
func newAutoregressive(who string, made MADEConfig, key Key, dim, contextDim int, t Transformer, order []int) (Params, Bijection, error) {
	return newAR(who, made, key, dim, contextDim, t, order, 0)
}

// newAR is newAutoregressive; mafS > 0 marks MAF with that bound (see
// autoregressive.mafS).
func newAR(who string, made MADEConfig, key Key, dim, contextDim int, t Transformer, order []int, mafS float64) (Params, Bijection, error) {
	if err := checkDim(who, dim, 1); err != nil {
		return nil, Bijection{}, err
	}
	if err := checkContextDim(who, contextDim); err != nil {
		return nil, Bijection{}, err
	}
	if err := t.validate(who); err != nil {
		return nil, Bijection{}, err
	}
	p, m, err := newMADE(who, made, key, dim, t.Params*dim, contextDim)
	if err != nil {
		return nil, Bijection{}, err
	}
	a := &autoregressive{who: who, m: m, t: t.withInverseVJP(), dim: dim, at: paramMajor(dim)}
	a.at.order = order
	a.mafS = mafS
	return p, Bijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := a.direct(p, x, c, false)
			return z, ld
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := a.inverse(p, z, c, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return a.direct(p, x, c, true)
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return a.inverse(p, z, c, true)
		},
		Prepare: a.prepare,
	}, nil
}

// check checks a pass's shapes and returns its rows as a contiguous slice,
// the row count and the context's rows (nil without a context).
func (a *autoregressive) check(p Params, u, c *mat.Dense) (us []float64, n int, cs []float64) {
	checkParams(a.who, p, a.m.np)
	checkWidth(a.who, u, a.dim)
	us, n, _ = rawRows(u)
	checkContext(a.who, c, n, a.m.cdim)
	if a.m.cdim > 0 {
		cs, _, _ = rawRows(c)
	}
	return us, n, cs
}

// addContextGrad adds the n×cdim gradient g (row-major) into dc, when dc is
// not nil.
func addContextGrad(dc *mat.Dense, g []float64, cdim int) {
	if dc == nil || g == nil {
		return
	}
	r := dc.RawMatrix()
	for i := range r.Rows {
		dst := r.Data[i*r.Stride : i*r.Stride+cdim]
		for j, v := range g[i*cdim : (i+1)*cdim] {
			dst[j] += v
		}
	}
}

// direct is Direct (and, when vjp, DirectVJP): one dense MADE pass, then
// one transformer per entry. Row r of the MADE's output holds input i's θ
// at columns k·dim + i.
func (a *autoregressive) direct(p Params, x, c *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	m, dim, P := a.m, a.dim, a.t.Params
	xs, n, cs := a.check(p, x, c)
	w := P * dim // MADE output columns
	// y is pooled for the call without a pullback, else kept on its tape.
	var y []float64
	var tape *madeTape
	if vjp {
		tape = m.newTape(p, xs, cs, n)
		y = tape.get(n * w)
	} else {
		yBuf := getScratch(n * w)
		defer yBuf.put()
		y = yBuf.f
	}
	m.forward(p, xs, cs, n, tape, y)
	z := make([]float64, n*dim)
	ld := make([]float64, n)
	forRows(n, dim*transformerWork, func(r0, r1 int) { a.transformRows(y, xs, z, ld, r0, r1) })
	if !vjp {
		return mat.NewDense(n, dim, z), ld, nil
	}
	// The tape holds p (read, not copied), private copies of x (its
	// inputs[0]) and the context, and, on its pooled part, y and a copy of
	// z (the caller owns the output). The pullback's first call gives the
	// pooled part back; a later one reruns the pass and calls its pullback.
	xc, zc := tape.inputs[0], tape.get(n*dim)
	copy(zc, z)
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(a.who, dz, dLogDet, dp, dc, n, dim, m.np, m.cdim)
		if !tape.take() {
			var cm *mat.Dense
			if tape.ctx != nil {
				cm = mat.NewDense(n, m.cdim, tape.ctx)
			}
			_, _, again := a.direct(tape.p, mat.NewDense(n, dim, xc), cm, true)
			return again(dz, dLogDet, dp, dc)
		}
		defer tape.release()
		// z_i = f(x_i; θ_i(x_<i, c)): the transformer's pullback gives the
		// diagonal term ∂L/∂x_i at fixed θ and dL/dθ_i; the MADE pulls
		// dy = [dL/dθ] back to the parameters, to x (the strictly
		// triangular part of ∂z/∂x) and to c, and the two x terms add.
		g, _, _ := rawRows(dz)
		dyBuf, ddiagBuf := getScratch(n*w), getScratch(n*dim)
		defer dyBuf.put()
		defer ddiagBuf.put()
		dy, ddiag := dyBuf.f, ddiagBuf.f
		var dctx []float64
		if m.cdim > 0 {
			dctxBuf := getZeroed(n * m.cdim)
			defer dctxBuf.put()
			dctx = dctxBuf.f
		}
		forRows(n, dim*transformerWork, func(r0, r1 int) {
			if a.mafS > 0 {
				mafBackRows(a.mafS, dim, y, zc, g, dLogDet, dy, ddiag, r0, r1)
				return
			}
			buf := make([]float64, 2*P)
			theta, dtheta := buf[:P:P], buf[P:]
			for r := r0; r < r1; r++ {
				yr := y[r*w : (r+1)*w]
				gl := dLogDet[r]
				for i := 0; i < dim; i++ {
					k := r*dim + i
					fixed := a.at.gather(theta, yr, i)
					clear(dtheta)
					ddiag[k] = a.t.ForwardVJP(theta, xc[k], zc[k], g[k], gl, dtheta)
					a.at.scatter(dy[r*w:(r+1)*w], dtheta, yr, i, fixed)
				}
			}
		})
		dx := m.backward(tape, dy, dp, dctx)
		for k, v := range ddiag {
			dx[k] += v
		}
		addContextGrad(dc, dctx, m.cdim)
		return mat.NewDense(n, dim, dx)
	}
	return mat.NewDense(n, dim, z), ld, back
}

// transformRows sets rows [r0, r1) of z (n×dim) and ld from those of x
// through the transformer, with θ from the MADE's output y (n×P·dim).
func (a *autoregressive) transformRows(y, xs, z, ld []float64, r0, r1 int) {
	if a.mafS > 0 {
		mafRows(a.mafS, a.dim, y, xs, z, ld, r0, r1)
		return
	}
	dim, P := a.dim, a.t.Params
	w := P * dim
	theta := make([]float64, P)
	for r := r0; r < r1; r++ {
		yr := y[r*w : (r+1)*w]
		zr := z[r*dim : (r+1)*dim]
		sum := 0.0
		for i, xi := range xs[r*dim : (r+1)*dim] {
			a.at.gather(theta, yr, i)
			v, l := a.t.Forward(theta, xi)
			zr[i] = v
			sum += l
		}
		ld[r] = sum
	}
}

// prepare is the layer's Prepare: a copy of p, its masked weights and the
// weight blocks of the incremental evaluation, computed once, and row maps
// that run the dense pass (Direct) or the dim sequential steps (Inverse)
// on them.
func (a *autoregressive) prepare(p Params) PreparedBijection {
	m := a.m
	checkParams(a.who, p, m.np)
	q := slices.Clone(p)
	wm := make([]float64, m.nw)
	m.maskedWeights(q, wm)
	blk := make([]float64, m.inc.size)
	m.incBlocks(q, blk)
	w := a.t.Params * a.dim
	pm := m.prepareDense(q, wm)
	// directTo is the direct map writing column i at pos[i] (nil: in
	// place), which MAF's loops can do (see preparedRows.directTo).
	directTo := func(pos []int) rowMap {
		return func(dst, src, ctx []float64, n int, ld []float64, serial bool) {
			yBuf := getScratch(n * w)
			defer yBuf.put()
			pm.forward(src, ctx, n, yBuf.f) // on this goroutine; so is the rest
			if pos != nil {
				mafRowsTo(a.mafS, a.dim, yBuf.f, src, dst, ld, 0, n, pos)
				return
			}
			a.transformRows(yBuf.f, src, dst, ld, 0, n)
		}
	}
	direct := directTo(nil)
	inverse := func(dst, src, ctx []float64, n int, ld []float64, serial bool) {
		clear(ld[:n])
		s := m.newIncBlocks(q, blk, n, false)
		defer s.release()
		s.serial = serial
		if ctx != nil {
			s.setContext(q, ctx)
		}
		a.inverseChunk(&arChunkState{s: s}, src, dst, ld, false)
	}
	r := &preparedRows{dim: a.dim, cdim: m.cdim, direct: direct, inverse: inverse}
	if a.mafS > 0 {
		r.directTo = directTo
	}
	return withRows(a.who, r)
}

// arChunkState is one chunk of the inverse sweep, kept for its pullback.
type arChunkState struct {
	s     *madeInc
	r0    int       // first row
	z     []float64 // a private copy of the chunk's inputs (n×dim, row-major)
	theta []float64 // every step's outputs: step b's P rows of n at (b−1)·P·n
}

// inverse is Inverse (and, when vjp, InverseVJP): dim sequential steps of
// the incremental MADE evaluation, over chunks of arChunk rows.
func (a *autoregressive) inverse(p Params, z, c *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	m, dim := a.m, a.dim
	zs, n, cs := a.check(p, z, c)
	cd := m.cdim
	// The weight blocks: kept by the pullback, or pooled without one.
	var blk []float64
	if vjp {
		blk = make([]float64, m.inc.size)
	} else {
		blkBuf := getScratch(m.inc.size)
		defer blkBuf.put()
		blk = blkBuf.f
	}
	m.incBlocks(p, blk)
	x := make([]float64, n*dim)
	ld := make([]float64, n)
	var chunks []*arChunkState
	var s *madeInc
	for r0 := 0; r0 < n; r0 += arChunk {
		nc := min(arChunk, n-r0)
		if vjp || s == nil {
			s = m.newIncBlocks(p, blk, nc, vjp)
			if !vjp {
				defer s.release()
			}
		} else {
			s.reset(nc)
		}
		if cs != nil {
			s.setContext(p, cs[r0*cd:(r0+nc)*cd])
		}
		ch := &arChunkState{s: s, r0: r0}
		a.inverseChunk(ch, zs[r0*dim:(r0+nc)*dim], x[r0*dim:(r0+nc)*dim], ld[r0:r0+nc], vjp)
		if vjp {
			chunks = append(chunks, ch)
		}
	}
	if !vjp {
		return mat.NewDense(n, dim, x), ld, nil
	}
	back := func(dx *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(a.who, dx, dLogDet, dp, dc, n, dim, m.np, cd)
		g, _, _ := rawRows(dx)
		dz := make([]float64, n*dim)
		var dcc []float64 // one chunk's context gradient
		if cs != nil {
			dcc = make([]float64, min(n, arChunk)*cd)
		}
		var gb *madeIncBack // the first chunk is the largest: its buffers serve the rest
		for _, ch := range chunks {
			nc := ch.s.n
			gb = ch.s.reuseBack(gb)
			a.inverseChunkBack(ch, gb, g[ch.r0*dim:(ch.r0+nc)*dim], dLogDet[ch.r0:ch.r0+nc], dz[ch.r0*dim:(ch.r0+nc)*dim], dp)
			if cs != nil { // the context weights' gradient, and dc when wanted
				ch.s.ctxBack(gb, dp, dcc[:nc*cd])
				if dc != nil {
					addContextGrad(dc.Slice(ch.r0, ch.r0+nc, 0, cd).(*mat.Dense), dcc[:nc*cd], cd)
				}
			}
		}
		return mat.NewDense(n, dim, dz)
	}
	return mat.NewDense(n, dim, x), ld, back
}

// inverseChunk runs the dim steps on the rows of z (s.n rows of dim,
// row-major), writing x and adding into the log-det, and, when vjp,
// keeping in ch what the pullback needs.
func (a *autoregressive) inverseChunk(ch *arChunkState, z, x, ld []float64, vjp bool) {
	m, dim, P, s := a.m, a.dim, a.t.Params, ch.s
	n := s.n
	if vjp {
		ch.z = slices.Clone(z)
		ch.theta = make([]float64, dim*P*n)
	}
	at := elementParams{elem: 1, param: n, order: a.at.order} // step b's outputs: P rows of n
	theta := make([]float64, P)
	xT := s.lv[0]
	for b := 1; b <= dim; b++ {
		o := s.output(b)
		i := m.perm[b-1]
		xrow := xT[(b-1)*n : b*n]
		if a.mafS > 0 {
			mafInverseStep(a.mafS, dim, i, o, z, xrow, ld)
		} else {
			for r := range xrow {
				at.gather(theta, o, r)
				v, l := a.t.Inverse(theta, z[r*dim+i])
				xrow[r] = v
				ld[r] += l
			}
		}
		if vjp {
			copy(ch.theta[(b-1)*P*n:b*P*n], o[:P*n])
		}
		if b < dim {
			s.hidden(b)
		}
	}
	for t, i := range m.perm {
		for r, v := range xT[t*n : (t+1)*n] {
			x[r*dim+i] = v
		}
	}
}

// inverseChunkBack is the pullback of inverseChunk: g = dL/dx and dLogDet
// for the chunk's rows in, dL/dz out into dz, dL/dparams added into dp.
func (a *autoregressive) inverseChunkBack(ch *arChunkState, gb *madeIncBack, g, dLogDet, dz []float64, dp Params) {
	m, dim, P, s := a.m, a.dim, a.t.Params, ch.s
	n := s.n
	gxT := gb.grad[0]
	for t, i := range m.perm {
		row := gxT[t*n : (t+1)*n]
		for r := range row {
			row[r] = g[r*dim+i]
		}
	}
	at := elementParams{elem: 1, param: n, order: a.at.order}
	buf := make([]float64, 2*P)
	theta, dtheta := buf[:P:P], buf[P:]
	gO := make([]float64, P*n)
	xT := s.lv[0]
	for b := dim; b >= 1; b-- {
		if b < dim {
			s.backHidden(gb, b, dp)
		}
		i := m.perm[b-1]
		ob := ch.theta[(b-1)*P*n : b*P*n]
		xrow := xT[(b-1)*n : b*n]
		for r, gr := range gxT[(b-1)*n : b*n] {
			fixed := at.gather(theta, ob, r)
			clear(dtheta)
			dz[r*dim+i] = a.t.InverseVJP(theta, ch.z[r*dim+i], xrow[r], gr, dLogDet[r], dtheta)
			at.scatter(gO, dtheta, ob, r, fixed)
		}
		s.backOutput(gb, b, gO, dp)
	}
}
