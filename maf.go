package flows

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// mafBound is the bound S on MAF's log-scales, α = S·tanh(raw/S): the same
// bound as AffineCoupling's.
const mafBound = 3

// MAF returns a masked autoregressive flow layer (Papamakarios et al.,
// 2017): an affine autoregressive bijection whose shifts and log-scales
// come from a MADE (see MADE for cfg, the masks and the ordering).
//
// With [μ | raw] = MADE(x) (the MADE made with in = dim, out = 2·dim, so
// column i is μ_i and column dim+i is raw_i, both depending only on the
// inputs before i in the ordering),
//
//	α_i    = S·tanh(raw_i/S)          (S = 3)
//	z_i    = (x_i − μ_i)·exp(−α_i)
//	logDet = −Σ_i α_i
//
// Direct, the density direction, is one parallel pass of the MADE.
// Inverse, the sampling direction, computes x_i = z_i·exp(α_i) + μ_i
// (logDet = +Σ_i α_i) one position of the ordering at a time, dim
// sequential steps, since μ_i and α_i need the inputs before i. Each step
// computes only what has just become computable (the hidden units whose
// degree is the position just filled, and the two outputs of the next
// input), so all dim steps together cost about one MADE pass restricted to
// its unmasked weights, not dim passes. Rows go through the steps in chunks
// of 256, which reuse one set of buffers (and the weights, rearranged once
// per call).
//
// The bound keeps every log-scale in (−3, 3) per dimension per layer, as
// in AffineCoupling, so a training step cannot blow up the scale; its slope
// 1 at 0 leaves small outputs as in the unbounded form.
//
// Parameters: exactly those of MADE(cfg)(key, dim, 2·dim), the same values
// for the same key, in MADE's layout: the full matrices of every layer,
// [W_0 (dim×h_0) | b_0 | … | W_L (h_{L−1}×2·dim) | b_L], masked entries
// unused and with zero gradient. The MADE's last layer is zero at init, so
// the layer starts as the identity: Direct(x) is x exactly, log-det 0.
//
// Stack MAF layers with a permutation (Reverse, Shuffle) between them, or
// give them different orders, so that every input is conditioned on the
// others somewhere in the stack.
//
// IAF (the inverse autoregressive flow, Kingma et al., 2016) is
// Invert(MAF(cfg)): sampling in one parallel pass, density evaluation in
// dim sequential steps. For that, MAF provides an InverseVJP, the pullback
// of the sequential inverse, as cheap as the Direct pullback, so
// Invert(MAF(cfg)) trains by maximum likelihood like any other layer.
//
// dim 1 is allowed: μ and α are then free parameters (the MADE's last
// biases), an elementwise affine map. Init returns an error starting
// "flows: MAF:" for dim < 1 and for a bad cfg (see MADE). The functions
// panic for a batch without dim columns or parameters of the wrong length.
// The pullbacks keep private copies of what they need, so they may be
// called after the batch or the parameters change, any number of times,
// from any goroutine.
func MAF(cfg MADEConfig) InitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden) // the caller may reuse its slice
	return func(key Key, dim int) (Params, Bijection, error) {
		if err := checkDim("MAF", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		p, m, err := newMADE("MAF", cfg, key, dim, 2*dim)
		if err != nil {
			return nil, Bijection{}, err
		}
		f := &mafLayer{m: m, dim: dim}
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

// mafLayer holds a MAF's immutable shape.
type mafLayer struct {
	m   *madeNet
	dim int
	who string // "MAF" when empty
}

// name is the layer's name in panics.
func (f *mafLayer) name() string {
	if f.who == "" {
		return "MAF"
	}
	return f.who
}

// dropCtx turns a conditional pullback into a plain one.
func dropCtx(back CondPullback) Pullback {
	if back == nil {
		return nil
	}
	return func(dz *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
		dx, _ := back(dz, dLogDet, dp)
		return dx
	}
}

// direct is Direct (and, when vjp, DirectVJP): one dense MADE pass.
func (f *mafLayer) direct(p Params, x *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	z, ld, back := f.directCtx(p, x, nil, vjp)
	return z, ld, dropCtx(back)
}

// ctxRows checks the context of a batch of n rows (when the layer has one)
// and returns its rows, row-major; nil without a context.
func (f *mafLayer) ctxRows(c *mat.Dense, n int) []float64 {
	if f.m.cdim == 0 {
		return nil
	}
	checkContext(f.name(), c, n, f.m.cdim)
	cs, _, _ := rawRows(c)
	return cs
}

// directCtx is direct given the context c (nil for an unconditional MAF):
// the MADE's pre-activations gain the context terms (see newCondMADE), and
// the pullback also returns dc (nil without a context).
func (f *mafLayer) directCtx(p Params, x, c *mat.Dense, vjp bool) (*mat.Dense, []float64, CondPullback) {
	m, dim := f.m, f.dim
	checkParams(f.name(), p, m.np)
	checkWidth(f.name(), x, dim)
	xs, n, _ := rawRows(x)
	cs := f.ctxRows(c, n)
	y, tape := m.forwardCtx(p, xs, cs, n, vjp)
	z := make([]float64, n*dim)
	ld := make([]float64, n)
	// For the pullback: e = exp(−α), th = tanh(raw/S) and a copy of z.
	var e, th, zc []float64
	if vjp {
		buf := make([]float64, 3*n*dim)
		e, th, zc = buf[:n*dim], buf[n*dim:2*n*dim], buf[2*n*dim:]
	}
	const S = mafBound
	for r := 0; r < n; r++ {
		yr := y[r*2*dim : (r+1)*2*dim]
		xr := xs[r*dim : (r+1)*dim]
		zr := z[r*dim : (r+1)*dim]
		sum := 0.0
		for i := range zr {
			t := math.Tanh(yr[dim+i] / S)
			a := S * t
			ei := math.Exp(-a)
			zr[i] = (xr[i] - yr[i]) * ei
			sum += a
			if vjp {
				k := r*dim + i
				e[k], th[k], zc[k] = ei, t, zr[i]
			}
		}
		ld[r] = -sum
	}
	if !vjp {
		return mat.NewDense(n, dim, z), ld, nil
	}
	back := func(dz *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
		checkPullback(f.name(), dz, dLogDet, dp, n, dim, m.np)
		// With g = dL/dz, gl = dL/dlogDet, e = exp(−α):
		//
		//   ∂z_i/∂x_i (direct) = e_i,  ∂z_i/∂μ_i = −e_i,  ∂z_i/∂α_i = −z_i,
		//   ∂logDet/∂α_i = −1,  ∂α_i/∂raw_i = 1 − th_i²,
		//
		// so dμ = −g·e, dα = −g·z − gl, draw = dα·(1 − th²); the MADE pulls
		// dy = [dμ | draw] back to the parameters and to x, and x's direct
		// term g·e is added (the MADE's output for i does not depend on
		// x_i, so the two terms are the diagonal and strictly triangular
		// parts of ∂z/∂x).
		g, _, _ := rawRows(dz)
		dy := make([]float64, n*2*dim)
		for r := 0; r < n; r++ {
			gl := dLogDet[r]
			for i := 0; i < dim; i++ {
				k := r*dim + i
				dy[r*2*dim+i] = -g[k] * e[k]
				da := -g[k]*zc[k] - gl
				dy[r*2*dim+dim+i] = da * (1 - th[k]*th[k])
			}
		}
		dx, dctx := m.backwardCtx(tape, dy, dp)
		for k, gk := range g[:n*dim] {
			dx[k] += gk * e[k]
		}
		if dctx == nil {
			return mat.NewDense(n, dim, dx), nil
		}
		return mat.NewDense(n, dim, dx), mat.NewDense(n, m.cdim, dctx)
	}
	return mat.NewDense(n, dim, z), ld, back
}

// inverse is Inverse (and, when vjp, InverseVJP): dim sequential steps of
// the incremental MADE evaluation. At step b (b = 1, …, dim) the input
// i = perm[b−1] at position b−1 (degree b) is set from the outputs of
// degree b, which depend only on the inputs already set:
//
//	x_i = z_i·exp(α_i) + μ_i,   logDet += α_i,
//
// and then the hidden units of degree b, which have just become computable,
// are computed.
//
// The pullback is reverse-mode differentiation through exactly these
// steps, in reverse: the steps form a chain in which each quantity is
// computed once (inputs, hidden groups and outputs, by degree), so the
// reverse sweep visits them in the reverse of the order they were computed,
// and the gradient of each is complete when it is visited (everything that
// read it came later in the forward sweep). At step b, in reverse:
//
//  1. the hidden groups of degree b are pulled back (top layer first),
//     completing the gradient of input i, which they alone (with outputs of
//     higher degree, already done) read;
//  2. with g = dL/dx_i (the caller's dx plus what step 1 and later steps
//     added) and gl = dL/dlogDet, x_i = z_i·e + μ_i with e = exp(α_i)
//     gives dz_i = g·e, dμ_i = g, dα_i = g·z_i·e + gl and
//     draw_i = dα_i·(1 − th²);
//  3. [dμ_i, draw_i] is pulled back through the output group of degree b
//     into the parameters and the hidden units of degree < b.
//
// Equivalently, by the implicit-function theorem on Direct(x, θ) = z, with
// J = ∂z/∂x (triangular in the ordering, diagonal exp(−α)) and the inverse
// log-det Σα(x, θ): dz solves Jᵀ·dz = dx + gl·∂(Σα)/∂x, and
// dθ = −(∂z/∂θ)ᵀ·dz + gl·∂(Σα)/∂θ. The sweep is the back-substitution of
// that triangular system, done without forming J. The pullback thus costs
// one incremental pass, like the forward.
func (f *mafLayer) inverse(p Params, z *mat.Dense, vjp bool) (*mat.Dense, []float64, Pullback) {
	x, ld, back := f.inverseCtx(p, z, nil, vjp)
	return x, ld, dropCtx(back)
}

// inverseCtx is inverse given the context c (nil for an unconditional
// MAF): each chunk's incremental evaluation adds the context terms, and the
// pullback also returns dc (nil without a context).
func (f *mafLayer) inverseCtx(p Params, z, ctx *mat.Dense, vjp bool) (*mat.Dense, []float64, CondPullback) {
	m, dim := f.m, f.dim
	checkParams(f.name(), p, m.np)
	checkWidth(f.name(), z, dim)
	zs, n, _ := rawRows(z)
	cs := f.ctxRows(ctx, n)
	cd := m.cdim
	blk := m.incBlocks(p)
	x := make([]float64, n*dim)
	ld := make([]float64, n)
	// Rows are independent: the sweep runs over chunks of mafChunk rows, so
	// that each chunk's level buffers stay in cache while every step's
	// products read them; without a pullback one set of buffers serves all
	// chunks.
	var chunks []*mafInvChunk
	var s *madeInc
	for r0 := 0; r0 < n; r0 += mafChunk {
		nc := min(mafChunk, n-r0)
		if vjp || s == nil {
			s = m.newIncBlocks(p, blk, nc, vjp)
		} else {
			s.reset(nc)
		}
		if cs != nil {
			s.setContext(p, cs[r0*cd:(r0+nc)*cd])
		}
		c := &mafInvChunk{s: s, r0: r0}
		f.inverseChunk(c, zs[r0*dim:(r0+nc)*dim], x[r0*dim:(r0+nc)*dim], ld[r0:r0+nc], vjp)
		if vjp {
			chunks = append(chunks, c)
		}
	}
	if !vjp {
		return mat.NewDense(n, dim, x), ld, nil
	}
	back := func(dx *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
		checkPullback(f.name(), dx, dLogDet, dp, n, dim, m.np)
		g, _, _ := rawRows(dx)
		dz := make([]float64, n*dim)
		var dc []float64
		if cs != nil {
			dc = make([]float64, n*cd)
		}
		var gb *madeIncBack // the first chunk is the largest: its buffers serve the rest
		for _, c := range chunks {
			nc := c.s.n
			gb = c.s.reuseBack(gb)
			f.inverseChunkBack(c, gb, g[c.r0*dim:(c.r0+nc)*dim], dLogDet[c.r0:c.r0+nc], dz[c.r0*dim:(c.r0+nc)*dim], dp)
			if dc != nil {
				c.s.ctxBack(gb, dp, dc[c.r0*cd:(c.r0+nc)*cd])
			}
		}
		if dc == nil {
			return mat.NewDense(n, dim, dz), nil
		}
		return mat.NewDense(n, dim, dz), mat.NewDense(n, cd, dc)
	}
	return mat.NewDense(n, dim, x), ld, back
}

// mafChunk is the number of rows the sequential inverse sweeps at a time:
// a chunk's hidden values (width × mafChunk) stay in cache across the dim
// steps, while the products stay wide enough to run at full speed.
const mafChunk = 256

// mafInvChunk is one chunk of the inverse sweep, kept for its pullback.
type mafInvChunk struct {
	s        *madeInc
	r0       int       // first row
	e, th, w []float64 // e = exp(α), th = tanh(raw/S), w = z·e, each dim×rows transposed, row b−1 for input perm[b−1]
}

// inverseChunk runs the dim steps on the rows of z (s.n rows of dim,
// row-major), writing x and the log-det, and, when vjp, keeping in c what
// the pullback needs.
func (f *mafLayer) inverseChunk(c *mafInvChunk, z, x, ld []float64, vjp bool) {
	m, dim, s := f.m, f.dim, c.s
	n := s.n
	if vjp {
		buf := make([]float64, 3*n*dim)
		c.e, c.th, c.w = buf[:n*dim], buf[n*dim:2*n*dim], buf[2*n*dim:]
	}
	const S = mafBound
	xT := s.lv[0]
	for b := 1; b <= dim; b++ {
		o := s.output(b)
		mu, raw := o[:n], o[n:2*n]
		i := m.perm[b-1]
		xrow := xT[(b-1)*n : b*n]
		for r := range xrow {
			t := math.Tanh(raw[r] / S)
			a := S * t
			ea := math.Exp(a)
			wr := z[r*dim+i] * ea
			xrow[r] = wr + mu[r]
			ld[r] += a
			if vjp {
				k := (b-1)*n + r
				c.e[k], c.th[k], c.w[k] = ea, t, wr
			}
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
func (f *mafLayer) inverseChunkBack(c *mafInvChunk, gb *madeIncBack, g, dLogDet, dz []float64, dp Params) {
	m, dim, s := f.m, f.dim, c.s
	n := s.n
	gxT := gb.grad[0]
	for t, i := range m.perm {
		row := gxT[t*n : (t+1)*n]
		for r := range row {
			row[r] = g[r*dim+i]
		}
	}
	gO := make([]float64, 2*n)
	for b := dim; b >= 1; b-- {
		if b < dim {
			s.backHidden(gb, b, dp)
		}
		i := m.perm[b-1]
		for r, gr := range gxT[(b-1)*n : b*n] {
			k := (b-1)*n + r
			dz[r*dim+i] = gr * c.e[k]
			gO[r] = gr
			da := gr*c.w[k] + dLogDet[r]
			gO[n+r] = da * (1 - c.th[k]*c.th[k])
		}
		s.backOutput(gb, b, gO, dp)
	}
}

// CondMAF is MAF conditioned on a context: the MADE also reads the context
// c (contextDim columns, degree 0 in the mask recipe, so every output may
// depend on it), entering every first-layer unit and, when cfg has hidden
// layers, every output directly (see below), so that
//
//	[μ | raw] = MADE(x; c),   α = S·tanh(raw/S),
//	z_i = (x_i − μ_i)·exp(−α_i),   logDet = −Σ_i α_i,
//
// with MAF's dense Direct, sequential Inverse (the context terms are
// computed once per call and added to the pre-activations at each step),
// and both pullbacks, which also return dc.
//
// Parameter layout: MAF's (the MADE's, made with in = dim, out = 2·dim),
// followed by the context weights
//
//	[… | Wc_0 (contextDim×h_0) | Wc_L (contextDim×2·dim)]
//
// (only [… | Wc_0 (contextDim×2·dim)] without hidden layers), entering as
// pre-activation += c·Wc. The weights into outputs start at zero, so the
// layer starts as the identity for every context. The direct context
// weights into the outputs are what lets μ and α of the first input of the
// ordering, which no hidden unit reaches, depend on c.
//
// Init returns an error for dim < 1, contextDim < 1 or a bad cfg; the
// functions panic for a batch or context of the wrong shape.
func CondMAF(cfg MADEConfig) CondInitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden) // the caller may reuse its slice
	const who = "CondMAF"
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if err := checkDim(who, dim, 1); err != nil {
			return nil, CondBijection{}, err
		}
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, CondBijection{}, err
		}
		p, m, err := newCondMADE(who, cfg, key, dim, 2*dim, contextDim)
		if err != nil {
			return nil, CondBijection{}, err
		}
		f := &mafLayer{m: m, dim: dim, who: who}
		return p, CondBijection{
			Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
				z, ld, _ := f.directCtx(p, x, c, false)
				return z, ld
			},
			Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
				x, ld, _ := f.inverseCtx(p, z, c, false)
				return x, ld
			},
			DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
				return f.directCtx(p, x, c, true)
			},
			InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, CondPullback) {
				return f.inverseCtx(p, z, c, true)
			},
		}, nil
	}
}
