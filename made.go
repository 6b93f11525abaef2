package flows

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// Order is the ordering of the inputs that an autoregressive net (MADE) and
// layer (MAF) respect: the outputs for the input at position t of the
// ordering depend only on the inputs at positions before t.
type Order int

const (
	// NaturalOrder puts input i at position i: the outputs for input i
	// depend on inputs 0, …, i−1.
	NaturalOrder Order = iota
	// ReversedOrder puts input i at position dim−1−i: the outputs for
	// input i depend on inputs i+1, …, dim−1.
	ReversedOrder
	// RandomOrder draws the ordering, a permutation of the inputs, from the
	// init key.
	RandomOrder
)

// String returns the order's name, as in the Go constant.
func (o Order) String() string {
	switch o {
	case NaturalOrder:
		return "NaturalOrder"
	case ReversedOrder:
		return "ReversedOrder"
	case RandomOrder:
		return "RandomOrder"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// valid reports whether o is one of the declared orders.
func (o Order) valid() bool { return o >= NaturalOrder && o <= RandomOrder }

// MADEConfig describes a MADE network (and the MADE inside a MAF layer).
// The zero value is a masked affine map (no hidden layers), ReLU, in the
// natural order.
type MADEConfig struct {
	// Hidden holds the widths of the hidden layers, in order; none gives a
	// single masked affine map. Every output sees every input before it in
	// the ordering when each width is at least dim−1 (see MADE).
	Hidden []int
	// Act is the activation after each hidden layer.
	Act Activation
	// Order is the ordering of the inputs.
	Order Order
}

// MADE returns a masked autoencoder for distribution estimation (Germain et
// al., 2015): an MLP whose weights are multiplied by fixed binary masks so
// that it is autoregressive. Made with in = dim input columns and
// out = K·dim output columns (K ≥ 1, the outputs per input; init returns
// an error unless out is a positive multiple of in), it maps x (n×dim) to
// y (n×K·dim) where column k·dim + i is the k-th output for input i, and
// that column depends only on the inputs that come before input i in
// cfg.Order. The outputs for the first input of the ordering are constants
// (their biases).
//
// Masks, by degrees (the recipe of Germain et al.). Input i gets degree
// d(i) = its 1-based position in the ordering (1, …, dim). Hidden unit k
// of every hidden layer gets degree 1 + (k mod max(dim−1, 1)), cycling
// through 1, …, dim−1, so every degree is present when the layer is at
// least dim−1 wide. Output column k·dim + i gets degree d(i). A weight
// from a node of degree a to a hidden unit of degree b is used when a ≤ b;
// a weight into an output of degree b is used when a < b. So a hidden
// unit of degree b sees inputs of degree ≤ b, and the outputs for input i
// see inputs of degree < d(i): exactly the inputs before i when every hidden
// layer is at least dim−1 wide (narrower layers see fewer of them, but
// every output except the first input's is still reached). For dim 1 there
// are no valid degrees for hidden units (jax-flows' recipe divides by zero
// there): the rule above gives them degree 1, so they see the input but
// feed nothing, and the outputs are their biases alone: a MAF of dim 1 is
// an elementwise affine map.
//
// Parameter layout: exactly MLP's, the full matrices of every layer,
// for layers l = 0, …, len(Hidden) (widths in_0 = in, out_l = Hidden[l]
// and out for the last layer):
//
//	[W_0 (in_0×out_0, row-major) | b_0 (out_0) | W_1 | b_1 | … ]
//
// with y_l = x_l·(W_l ⊙ M_l) + b_l. The masked entries of W_l (M_l = 0)
// are kept so that the layout matches MLP's: their values are never read,
// and the pullback adds exactly zero to their gradient. They are zero at
// init, stay zero under any optimiser that moves a parameter only along its
// gradient, and may hold anything (even NaN) without changing the output.
//
// Initialisation follows MLP: hidden weights uniform on (−a, a) with
// a = √(6/(in_l+out_l)) for Tanh and √(6/in_l) otherwise (the unmasked
// fan-in is smaller, which only shrinks the initial activations), drawn
// from key.Split(L+1)[l] for layer l of L; zero biases; and a zero last
// layer, so the output is identically zero at init (a MAF starts as the
// identity). RandomOrder draws the ordering from key.Split(L+1)[L].
//
// Init returns an error (starting "flows: MADE:") for in < 1, out not a
// positive multiple of in, a hidden width < 1, or an unknown activation or
// order. Apply and ApplyVJP panic for a batch without in columns or
// parameters of the wrong length. The pullback returned by ApplyVJP keeps
// its own copies of x and of the masked weights, so it may be called after
// x or p change, any number of times, from any goroutine.
func MADE(cfg MADEConfig) NetInitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden) // the caller may reuse its slice
	return func(key Key, in, out int) (Params, Net, error) {
		p, m, err := newMADE("MADE", cfg, key, in, out)
		if err != nil {
			return nil, Net{}, err
		}
		return p, Net{Apply: m.apply, ApplyVJP: m.applyVJP}, nil
	}
}

// madeLayer is one masked dense layer's place in the flat parameter vector.
type madeLayer struct {
	in, out int
	w, b    int    // offsets of W (in×out, row-major) and b (out) in p
	mw      int    // offset of this layer's masked weights in a buffer of madeNet.nw entries
	mask    []bool // in×out, row-major: true where the weight is used
}

// madeNet is a MADE's immutable shape: layers, masks and the degree
// bookkeeping for both the dense (parallel) pass and the incremental
// (sequential) one used by MAF's inverse.
type madeNet struct {
	who        string
	in, out, k int // k outputs per input: out = k·in
	act        Activation
	layers     []madeLayer
	np, nw     int // parameters; weights of all layers (masked buffer size)
	maxW       int // largest in×out of a layer (weight-gradient scratch)
	maxHidden  int
	perm, pos  []int // perm[t] is the input at position t; pos[i] the position of input i
	keepPre    bool
	inc        madeIncShape

	// Context (newCondMADE): cdim context columns enter layer l's
	// pre-activation through the weights at ctxOff[l] (cdim×out_l,
	// row-major), or not at all when ctxOff[l] < 0; ctxOff is nil
	// without a context.
	cdim   int
	ctxOff []int
}

// newMADE builds a MADE; who names the layer in errors ("flows: who: …")
// and panics.
func newMADE(who string, cfg MADEConfig, key Key, in, out int) (Params, *madeNet, error) {
	if in < 1 {
		return nil, nil, fmt.Errorf("flows: %s: input width %d, want at least 1", who, in)
	}
	if out < in || out%in != 0 {
		return nil, nil, fmt.Errorf("flows: %s: output width %d is not a positive multiple of the input width %d", who, out, in)
	}
	for i, h := range cfg.Hidden {
		if h < 1 {
			return nil, nil, fmt.Errorf("flows: %s: hidden layer %d has width %d, want at least 1", who, i, h)
		}
	}
	if !cfg.Act.valid() {
		return nil, nil, fmt.Errorf("flows: %s: unknown activation %v", who, cfg.Act)
	}
	if !cfg.Order.valid() {
		return nil, nil, fmt.Errorf("flows: %s: unknown order %v", who, cfg.Order)
	}
	dim := in
	L := len(cfg.Hidden) + 1
	keys := key.Split(L + 1)

	m := &madeNet{who: who, in: in, out: out, k: out / in, act: cfg.Act, keepPre: cfg.Act.needsPre()}
	m.perm = make([]int, dim)
	switch cfg.Order {
	case NaturalOrder:
		for t := range m.perm {
			m.perm[t] = t
		}
	case ReversedOrder:
		for t := range m.perm {
			m.perm[t] = dim - 1 - t
		}
	case RandomOrder:
		m.perm = keys[L].Rand().Perm(dim)
	}
	m.pos = make([]int, dim)
	for t, i := range m.perm {
		m.pos[i] = t
	}

	// Degrees of the nodes of each level: level 0 the inputs, levels
	// 1, …, L−1 the hidden layers, level L the outputs.
	degs := make([][]int, L+1)
	degs[0] = make([]int, dim)
	for i := range degs[0] {
		degs[0][i] = m.pos[i] + 1
	}
	cycle := max(dim-1, 1)
	for l, h := range cfg.Hidden {
		d := make([]int, h)
		for k := range d {
			d[k] = 1 + k%cycle
		}
		degs[l+1] = d
	}
	degs[L] = make([]int, out)
	for c := range degs[L] {
		degs[L][c] = m.pos[c%dim] + 1
	}

	widths := append(append([]int{in}, cfg.Hidden...), out)
	m.layers = make([]madeLayer, L)
	for l := range m.layers {
		li := madeLayer{in: widths[l], out: widths[l+1], w: m.np, mw: m.nw}
		li.b = li.w + li.in*li.out
		m.np = li.b + li.out
		m.nw += li.in * li.out
		m.maxW = max(m.maxW, li.in*li.out)
		if l < L-1 {
			m.maxHidden = max(m.maxHidden, li.out)
		}
		toOutput := l == L-1
		li.mask = make([]bool, li.in*li.out)
		for a, da := range degs[l] {
			for b, db := range degs[l+1] {
				li.mask[a*li.out+b] = da < db || (!toOutput && da == db)
			}
		}
		m.layers[l] = li
	}

	p := make(Params, m.np) // zero biases and a zero last layer
	for l, li := range m.layers[:L-1] {
		var a float64
		if cfg.Act == Tanh {
			a = math.Sqrt(6 / float64(li.in+li.out))
		} else {
			a = math.Sqrt(6 / float64(li.in))
		}
		rng := keys[l].Rand()
		for i, used := range li.mask {
			v := a * (2*rng.Float64() - 1) // drawn for every entry: masks never shift the stream
			if used {
				p[li.w+i] = v
			}
		}
	}
	m.inc = newMADEIncShape(m, degs)
	return p, m, nil
}

// maskedWeights returns W_l ⊙ M_l for every layer in one buffer (layer l at
// layers[l].mw). Masked entries are set to zero without reading them, so
// that they cannot matter even when they hold NaN or ±Inf.
func (m *madeNet) maskedWeights(p Params) []float64 {
	wm := make([]float64, m.nw)
	for _, li := range m.layers {
		src := p[li.w:li.b]
		dst := wm[li.mw : li.mw+li.in*li.out]
		for i, used := range li.mask {
			if used {
				dst[i] = src[i]
			}
		}
	}
	return wm
}

// affine sets c (n×li.out) to x·Wm + b, with x n×li.in and Wm the layer's
// masked weights.
func (li madeLayer) affine(p Params, wm, x []float64, n int, c []float64) {
	b := p[li.b : li.b+li.out]
	for i := 0; i < n; i++ {
		copy(c[i*li.out:(i+1)*li.out], b)
	}
	linalg.Gemm(false, false, n, li.out, li.in, 1, x, wm[li.mw:li.mw+li.in*li.out], 1, c)
}

// madeTape is what the dense pass keeps for its pullback: private copies of
// everything it reads, so the pullback depends on nothing the caller owns.
type madeTape struct {
	n      int
	wm     []float64   // masked weights
	inputs [][]float64 // inputs[l]: layer l's input (n×in_l); inputs[0] a copy of x
	pres   [][]float64 // pre-activations of the hidden layers, kept only when act needs them
	ctx    []float64   // a copy of the context (n×cdim), nil without one
	wc     []float64   // a copy of the context weights, p[ctxOff[firstCtx()]:np]
}

// forward is the dense (parallel) pass on x (n×in, row-major, not
// modified). It returns y (n×out, a new slice) and, when tape, what the
// pullback needs.
func (m *madeNet) forward(p Params, x []float64, n int, tape bool) ([]float64, *madeTape) {
	return m.forwardCtx(p, x, nil, n, tape)
}

// forwardCtx is forward with the context ctx (n×m.cdim, row-major, not
// modified; nil when m.cdim is 0): layer l's pre-activation gains
// ctx·Wc_l for every layer with context weights. Without a context every
// value is computed as forward always did.
func (m *madeNet) forwardCtx(p Params, x, ctx []float64, n int, tape bool) ([]float64, *madeTape) {
	wm := m.maskedWeights(p)
	last := len(m.layers) - 1
	var t *madeTape
	var scratch [2][]float64
	if tape {
		t = &madeTape{n: n, wm: wm, inputs: make([][]float64, len(m.layers))}
		t.inputs[0] = slices.Clone(x[:n*m.in])
		if ctx != nil {
			t.ctx = slices.Clone(ctx[:n*m.cdim])
			t.wc = slices.Clone(p[m.ctxOff[m.firstCtx()]:m.np])
		}
		if m.keepPre {
			t.pres = make([][]float64, last)
		}
	} else if last > 0 {
		buf := make([]float64, 2*n*m.maxHidden)
		scratch = [2][]float64{buf[:n*m.maxHidden], buf[n*m.maxHidden:]}
	}
	h := x
	for l, li := range m.layers[:last] {
		var c []float64
		if tape {
			c = make([]float64, n*li.out)
		} else {
			c = scratch[l%2][:n*li.out]
		}
		li.affine(p, wm, h, n, c)
		if ctx != nil {
			m.addCtx(p, l, ctx, n, c)
		}
		post := c
		if tape && m.keepPre {
			t.pres[l] = c
			post = make([]float64, n*li.out)
		}
		m.act.apply(post, c)
		h = post
		if tape {
			t.inputs[l+1] = post
		}
	}
	y := make([]float64, n*m.out)
	m.layers[last].affine(p, wm, h, n, y)
	if ctx != nil {
		m.addCtx(p, last, ctx, n, y)
	}
	return y, t
}

// firstCtx is the first layer with context weights (they sit together at
// the end of p, from ctxOff[firstCtx()]).
func (m *madeNet) firstCtx() int {
	for l, off := range m.ctxOff {
		if off >= 0 {
			return l
		}
	}
	return -1
}

// addCtx adds ctx·Wc_l (n×out_l) into c, when layer l has context weights.
func (m *madeNet) addCtx(p Params, l int, ctx []float64, n int, c []float64) {
	off := m.ctxOff[l]
	if off < 0 {
		return
	}
	out := m.layers[l].out
	linalg.Gemm(false, false, n, out, m.cdim, 1, ctx[:n*m.cdim], p[off:off+m.cdim*out], 1, c[:n*out])
}

// backward is the pullback of the dense pass: given g = dL/dy (n×out,
// read only) it adds dL/dparams into dp and returns dL/dx (n×in, new).
//
// Layer l computes y_l = x_l·(W_l ⊙ M_l) + b_l, so with g_l = dL/dy_l
//
//	dW_l += M_l ⊙ (x_lᵀ·g_l)   (in_l×out_l: the masked entries get exactly 0),
//	db_l += Σ_rows g_l,
//	dx_l  = g_l·(W_l ⊙ M_l)ᵀ   (n×in_l),
//
// and for a hidden layer x_{l+1} = act(a_l), so g_{l−1} = dx_l ⊙ act'(a_{l−1}).
func (m *madeNet) backward(t *madeTape, g []float64, dp Params) []float64 {
	dx, _ := m.backwardCtx(t, g, dp)
	return dx
}

// backwardCtx is backward that also returns dL/dctx (n×cdim, new; nil
// without a context). For a layer with context weights, whose
// pre-activation gains ctx·Wc_l, with g_l = dL/d(pre-activation):
//
//	dWc_l += ctxᵀ·g_l,   dctx += g_l·Wc_lᵀ.
func (m *madeNet) backwardCtx(t *madeTape, g []float64, dp Params) ([]float64, []float64) {
	n := t.n
	scratch := make([]float64, m.maxW)
	var dctx []float64
	if t.ctx != nil {
		dctx = make([]float64, n*m.cdim)
	}
	for l := len(m.layers) - 1; l >= 0; l-- {
		li := m.layers[l]
		if t.ctx != nil && m.ctxOff[l] >= 0 {
			off := m.ctxOff[l]
			w0 := m.ctxOff[m.firstCtx()]
			wc := t.wc[off-w0 : off-w0+m.cdim*li.out]
			linalg.Gemm(true, false, m.cdim, li.out, n, 1, t.ctx, g[:n*li.out], 1, dp[off:off+m.cdim*li.out])
			linalg.Gemm(false, true, n, m.cdim, li.out, 1, g[:n*li.out], wc, 1, dctx)
		}
		s := scratch[:li.in*li.out]
		linalg.Gemm(true, false, li.in, li.out, n, 1, t.inputs[l], g, 0, s)
		dW := dp[li.w:li.b]
		for i, used := range li.mask {
			if used {
				dW[i] += s[i]
			}
		}
		db := dp[li.b : li.b+li.out]
		for r := 0; r < n; r++ {
			for j, v := range g[r*li.out : (r+1)*li.out] {
				db[j] += v
			}
		}
		dh := make([]float64, n*li.in)
		linalg.Gemm(false, true, n, li.in, li.out, 1, g, t.wm[li.mw:li.mw+li.in*li.out], 0, dh)
		if l > 0 {
			var pre []float64
			if t.pres != nil {
				pre = t.pres[l-1]
			}
			m.act.backInPlace(dh, t.inputs[l], pre)
		}
		g = dh
	}
	return g, dctx
}

// apply is Net.Apply.
func (m *madeNet) apply(p Params, x *mat.Dense) *mat.Dense {
	checkParams(m.who, p, m.np)
	checkWidth(m.who, x, m.in)
	xs, n, _ := rawRows(x)
	y, _ := m.forward(p, xs, n, false)
	return mat.NewDense(n, m.out, y)
}

// applyVJP is Net.ApplyVJP.
func (m *madeNet) applyVJP(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
	checkParams(m.who, p, m.np)
	checkWidth(m.who, x, m.in)
	xs, n, _ := rawRows(x)
	y, t := m.forward(p, xs, n, true)
	back := func(dy *mat.Dense, dp Params) *mat.Dense {
		if dy == nil {
			panic("flows: " + m.who + ": nil gradient in pullback")
		}
		if r, c := dy.Dims(); r != n || c != m.out {
			panic(fmt.Sprintf("flows: %s: pullback gradient is %d×%d, want %d×%d", m.who, r, c, n, m.out))
		}
		checkParams(m.who+": pullback", dp, m.np)
		g, _, _ := rawRows(dy)
		return mat.NewDense(n, m.in, m.backward(t, g, dp))
	}
	return mat.NewDense(n, m.out, y), back
}

// Incremental evaluation.
//
// Sampling from a MAF needs the outputs for the input at position t once
// the inputs before t are known, for t = 1, …, dim in turn. Rerunning the
// whole net each time costs dim passes; but a node of degree b depends only
// on inputs of degree ≤ b, so once the inputs of degree ≤ b are known, the
// nodes of degree b never change again. The incremental evaluation
// therefore computes, at step b, the output group of degree b (from the
// hidden nodes of degree < b) and, once the caller has set input b, the
// hidden groups of degree b of every layer, each exactly once: all dim
// steps together cost one pass of the net, restricted to the unmasked
// weights (about half the dense pass's work).
//
// To make every product a plain Gemm on contiguous slices, the nodes of
// each level are sorted by degree (stably) and each level's values are
// stored transposed, one row of n values per node: then "the nodes of
// degree ≤ b" are the first rows of the level's buffer, "the group of
// degree b" a contiguous band of rows, and the weights from the one to the
// other are copied once per call into a contiguous block:
//
//	group_bᵀ (w×n) = Wbᵀ (w×r) · prefixᵀ (r×n) + b,    Wb = W[prefix, group].

// madeIncShape is the degree bookkeeping of the incremental evaluation.
type madeIncShape struct {
	// sorted[v] lists the nodes of level v (0 the inputs, L the outputs)
	// by degree; start[v][b] is the number of nodes of degree < b, so the
	// group of degree b is sorted[v][start[v][b]:start[v][b+1]]
	// (b = 1, …, dim; start[v] has dim+2 entries).
	sorted, start [][]int
	// blocks[l][b] is the weight block of layer l (level l → l+1) into
	// the group of degree b, or rows < 0 when that group is never needed.
	blocks [][]madeIncBlock
	size   int // total entries of all blocks
}

// madeIncBlock is one weight block: rows×cols at off in the block buffer;
// its rows are the first rows of the source level, its columns the target
// group.
type madeIncBlock struct {
	off, rows, cols int
}

// newMADEIncShape sorts the nodes of every level (degs[v]: their degrees)
// and lays out the weight blocks of the groups the incremental evaluation
// computes.
func newMADEIncShape(m *madeNet, degs [][]int) madeIncShape {
	dim := m.in
	L := len(m.layers)
	var s madeIncShape
	s.sorted = make([][]int, L+1)
	s.start = make([][]int, L+1)
	for v, d := range degs {
		idx := make([]int, len(d))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return d[a] - d[b] })
		s.sorted[v] = idx
		cnt := make([]int, dim+1)
		for _, dd := range d {
			cnt[dd]++
		}
		st := make([]int, dim+2) // st[b] counts the nodes of degree < b
		for b := 2; b <= dim+1; b++ {
			st[b] = st[b-1] + cnt[b-1]
		}
		s.start[v] = st
	}
	s.blocks = make([][]madeIncBlock, L)
	for l := range m.layers {
		s.blocks[l] = make([]madeIncBlock, dim+1)
		s.blocks[l][0] = madeIncBlock{rows: -1} // degrees start at 1
		toOutput := l == L-1
		for b := 1; b <= dim; b++ {
			cols := s.start[l+1][b+1] - s.start[l+1][b]
			// Hidden groups of degree dim are never needed (they feed no
			// output: that only happens for dim 1), nor are empty groups.
			if cols == 0 || (!toOutput && b >= dim) {
				s.blocks[l][b] = madeIncBlock{rows: -1}
				continue
			}
			rows := s.start[l][b+1] // sources of degree ≤ b
			if toOutput {
				rows = s.start[l][b] // sources of degree < b
			}
			s.blocks[l][b] = madeIncBlock{off: s.size, rows: rows, cols: cols}
			s.size += rows * cols
		}
	}
	return s
}

// madeInc is one incremental evaluation over n rows (one call's state).
type madeInc struct {
	m   *madeNet
	p   Params      // read by the forward steps only (the biases), never by the pullback
	n   int         // rows
	blk []float64   // the weight blocks, m.incBlocks(p), shared by every chunk of a call
	lv  [][]float64 // lv[v]: level v's values transposed, rows in sorted order (v < L)
	pre [][]float64 // hidden pre-activations (same shape as lv), kept only for a pullback with SiLU
	out []float64   // k×n: the output group of the current degree

	lvBuf, preBuf [][]float64 // the buffers behind lv and pre, for the largest n
	outBuf        []float64

	// Context (setContext): ctx is this chunk's context (n×cdim, a private
	// copy), wc a copy of the context weights, and ctxT[l] (out_l×n, by
	// original column) layer l's per-row context term ctx·Wc_l,
	// transposed; ctxT is nil without a context.
	ctx, wc []float64
	ctxT    [][]float64
}

// madeIncBack is one reverse sweep's state, separate from the forward's so
// that a pullback may run many times, concurrently.
type madeIncBack struct {
	grad [][]float64 // grad[v]: the gradient of lv[v], same layout
	scr  []float64   // scratch for weight-block gradients
	gctx [][]float64 // gctx[l]: the gradient of ctxT[l], same layout (nil without a context)
}

// incBlocks copies the weight blocks of the incremental evaluation from p,
// once per call: every row chunk of the call shares them.
func (m *madeNet) incBlocks(p Params) []float64 {
	blk := make([]float64, m.inc.size)
	for l, li := range m.layers {
		for b, bl := range m.inc.blocks[l] {
			if bl.rows < 0 {
				continue
			}
			src := m.inc.sorted[l][:bl.rows]
			grp := m.inc.sorted[l+1][m.inc.start[l+1][b]:m.inc.start[l+1][b+1]]
			dst := blk[bl.off : bl.off+bl.rows*bl.cols]
			for r, a := range src {
				row := p[li.w+a*li.out : li.w+(a+1)*li.out]
				for c, j := range grp {
					dst[r*bl.cols+c] = row[j]
				}
			}
		}
	}
	return blk
}

// newInc starts an incremental evaluation of n rows at parameters p; see
// newIncBlocks.
func (m *madeNet) newInc(p Params, n int, vjp bool) *madeInc {
	return m.newIncBlocks(p, m.incBlocks(p), n, vjp)
}

// newIncBlocks starts an incremental evaluation of up to n rows at
// parameters p, with blk = m.incBlocks(p). The caller fills lv[0] row b−1 (input
// perm[b−1], degree b) before asking for anything of degree > b. Every
// value is written before it is read, so the buffers need no clearing when
// reset reuses them for another chunk.
func (m *madeNet) newIncBlocks(p Params, blk []float64, n int, vjp bool) *madeInc {
	s := &madeInc{m: m, p: p, blk: blk}
	L := len(m.layers)
	s.lvBuf = make([][]float64, L)
	s.lvBuf[0] = make([]float64, m.in*n)
	if vjp && m.keepPre {
		s.preBuf = make([][]float64, L)
	}
	for v := 1; v < L; v++ {
		s.lvBuf[v] = make([]float64, m.layers[v-1].out*n)
		if s.preBuf != nil {
			s.preBuf[v] = make([]float64, m.layers[v-1].out*n)
		}
	}
	s.outBuf = make([]float64, m.k*n)
	s.lv = make([][]float64, L)
	if s.preBuf != nil {
		s.pre = make([][]float64, L)
	}
	s.reset(n)
	return s
}

// reset makes s evaluate n rows, at most as many as it was made for.
func (s *madeInc) reset(n int) {
	s.n = n
	for v, buf := range s.lvBuf {
		w := s.m.in
		if v > 0 {
			w = s.m.layers[v-1].out
		}
		s.lv[v] = buf[:w*n]
		if s.preBuf != nil && v > 0 {
			s.pre[v] = s.preBuf[v][:w*n]
		}
	}
	s.out = s.outBuf[:s.m.k*n]
}

// group computes layer l's group of degree b into dst (cols×n), from the
// first rows of level l; it returns false when the group is not needed.
func (s *madeInc) group(l, b int, dst []float64) bool {
	bl := s.m.inc.blocks[l][b]
	if bl.rows < 0 {
		return false
	}
	n := s.n
	li := s.m.layers[l]
	grp := s.m.inc.sorted[l+1][s.m.inc.start[l+1][b]:s.m.inc.start[l+1][b+1]]
	for c, j := range grp {
		row := dst[c*n : (c+1)*n]
		bias := s.p[li.b+j]
		for r := range row {
			row[r] = bias
		}
		if s.ctxT != nil && s.ctxT[l] != nil {
			for r, v := range s.ctxT[l][j*n : (j+1)*n] {
				row[r] += v
			}
		}
	}
	linalg.Gemm(true, false, bl.cols, n, bl.rows, 1, s.blk[bl.off:bl.off+bl.rows*bl.cols], s.lv[l][:bl.rows*n], 1, dst[:bl.cols*n])
	return true
}

// hidden computes the hidden groups of degree b, layer by layer; the inputs
// of degree ≤ b must be set.
func (s *madeInc) hidden(b int) {
	n := s.n
	for l := 0; l < len(s.m.layers)-1; l++ {
		st := s.m.inc.start[l+1]
		post := s.lv[l+1][st[b]*n : st[b+1]*n]
		dst := post
		if s.pre != nil {
			dst = s.pre[l+1][st[b]*n : st[b+1]*n]
		}
		if s.group(l, b, dst) {
			s.m.act.apply(post, dst)
		}
	}
}

// output computes the outputs of degree b, those for input perm[b−1], and
// returns them as k rows of n (row c is output column c·dim + perm[b−1]);
// the hidden groups of degree < b must be computed. The slice is reused by
// the next call.
func (s *madeInc) output(b int) []float64 {
	s.group(len(s.m.layers)-1, b, s.out)
	return s.out
}

// newBack starts a reverse sweep: zero gradient buffers for every level;
// the caller fills grad[0] with the gradient of the inputs (transposed,
// rows in sorted order) it received.
func (s *madeInc) newBack() *madeIncBack { return s.reuseBack(nil) }

// reuseBack is newBack reusing the buffers of gb when it is not nil (a
// previous chunk's, of at least as many rows).
func (s *madeInc) reuseBack(gb *madeIncBack) *madeIncBack {
	if gb == nil {
		gb = &madeIncBack{grad: make([][]float64, len(s.lv))}
		for v, x := range s.lv {
			gb.grad[v] = make([]float64, len(x))
		}
		maxBlock := 0
		for _, bs := range s.m.inc.blocks {
			for _, bl := range bs {
				maxBlock = max(maxBlock, bl.rows*bl.cols)
			}
		}
		gb.scr = make([]float64, maxBlock)
		if s.ctxT != nil {
			gb.gctx = make([][]float64, len(s.ctxT))
			for l, ct := range s.ctxT {
				if ct != nil {
					gb.gctx[l] = make([]float64, len(ct))
				}
			}
		}
		return gb
	}
	for v, x := range s.lv {
		gb.grad[v] = gb.grad[v][:len(x)]
		clear(gb.grad[v])
	}
	for l, ct := range s.ctxT {
		if ct != nil {
			gb.gctx[l] = gb.gctx[l][:len(ct)]
			clear(gb.gctx[l])
		}
	}
	return gb
}

// backGroup pulls g = dL/d(group's pre-activation) (cols×n) of layer l's
// group of degree b back. With group_bᵀ = Wbᵀ·prefixᵀ + b:
//
//	dWb      += prefixᵀ·gᵀ  (rows×cols), scattered into dW at the block's
//	            (unmasked) entries,
//	db       += Σ_n g,
//	dprefixᵀ += Wb·g        (rows×n), into the source level's gradient.
func (s *madeInc) backGroup(gb *madeIncBack, l, b int, g []float64, dp Params) {
	bl := s.m.inc.blocks[l][b]
	if bl.rows < 0 {
		return
	}
	n := s.n
	li := s.m.layers[l]
	grp := s.m.inc.sorted[l+1][s.m.inc.start[l+1][b]:s.m.inc.start[l+1][b+1]]
	for c, j := range grp {
		sum := 0.0
		for _, v := range g[c*n : (c+1)*n] {
			sum += v
		}
		dp[li.b+j] += sum
	}
	if gb.gctx != nil && gb.gctx[l] != nil {
		// Each column belongs to one group, visited once per sweep.
		for c, j := range grp {
			copy(gb.gctx[l][j*n:(j+1)*n], g[c*n:(c+1)*n])
		}
	}
	if bl.rows == 0 {
		return
	}
	dWb := gb.scr[:bl.rows*bl.cols]
	linalg.Gemm(false, true, bl.rows, bl.cols, n, 1, s.lv[l][:bl.rows*n], g[:bl.cols*n], 0, dWb)
	for r, a := range s.m.inc.sorted[l][:bl.rows] {
		row := dp[li.w+a*li.out : li.w+(a+1)*li.out]
		for c, j := range grp {
			row[j] += dWb[r*bl.cols+c]
		}
	}
	wb := s.blk[bl.off : bl.off+bl.rows*bl.cols]
	linalg.Gemm(false, false, bl.rows, n, bl.cols, 1, wb, g[:bl.cols*n], 1, gb.grad[l][:bl.rows*n])
}

// backHidden pulls the hidden groups of degree b back, top layer first;
// their gradients must be complete (all groups of higher degree and the
// outputs of degree > b pulled back). It adds into the gradients of lower
// levels, down to the inputs of degree ≤ b.
func (s *madeInc) backHidden(gb *madeIncBack, b int, dp Params) {
	n := s.n
	for l := len(s.m.layers) - 2; l >= 0; l-- {
		if s.m.inc.blocks[l][b].rows < 0 {
			continue
		}
		st := s.m.inc.start[l+1]
		g := gb.grad[l+1][st[b]*n : st[b+1]*n]
		var pre []float64
		if s.pre != nil {
			pre = s.pre[l+1][st[b]*n : st[b+1]*n]
		}
		s.m.act.backInPlace(g, s.lv[l+1][st[b]*n:st[b+1]*n], pre)
		s.backGroup(gb, l, b, g, dp)
	}
}

// backOutput pulls the gradient of the outputs of degree b (k rows of n,
// as output returns them) back into dp and the last hidden level's (or the
// inputs') gradient.
func (s *madeInc) backOutput(gb *madeIncBack, b int, g []float64, dp Params) {
	s.backGroup(gb, len(s.m.layers)-1, b, g, dp)
}

// newCondMADE is newMADE with cdim ≥ 0 context columns. The context has
// degree 0 in the mask recipe: it may feed every unit. It enters the first
// layer (every hidden unit, or every output when there are no hidden
// layers) and, when there are hidden layers, the output layer directly as
// well, so that the outputs of the first input in the ordering (which see
// no hidden unit) still depend on it. In both places it adds ctx·Wc_l to
// the layer's pre-activation. Parameter layout: newMADE's, then
//
//	[… | Wc_0 (cdim×out_0) | Wc_L (cdim×out), when there are hidden layers]
//
// with Wc_0 into hidden units drawn like the hidden weights (uniform on
// (−a, a), the fan-in counting the context) and the output weights zero, so
// the outputs are still identically zero at init. With cdim 0 it is
// exactly newMADE.
func newCondMADE(who string, cfg MADEConfig, key Key, in, out, cdim int) (Params, *madeNet, error) {
	p, m, err := newMADE(who, cfg, key, in, out)
	if err != nil || cdim == 0 {
		return p, m, err
	}
	if cdim < 0 {
		return nil, nil, fmt.Errorf("flows: %s: context dimension %d", who, cdim)
	}
	L := len(m.layers)
	m.cdim = cdim
	m.ctxOff = make([]int, L)
	for l := range m.ctxOff {
		m.ctxOff[l] = -1
	}
	rng := key.Fold(0x636f6e74657874).Rand() // "context": a stream apart from newMADE's
	for _, l := range []int{0, L - 1} {
		if m.ctxOff[l] >= 0 {
			continue // L == 1: one layer is both
		}
		li := m.layers[l]
		m.ctxOff[l] = len(p)
		w := make([]float64, cdim*li.out)
		if l < L-1 {
			var a float64
			if cfg.Act == Tanh {
				a = math.Sqrt(6 / float64(li.in+cdim+li.out))
			} else {
				a = math.Sqrt(6 / float64(li.in+cdim))
			}
			for i := range w {
				w[i] = a * (2*rng.Float64() - 1)
			}
		}
		p = append(p, w...)
	}
	m.np = len(p)
	return p, m, nil
}

// setContext gives the incremental evaluation its chunk's context, ctx
// (s.n×cdim, row-major; copied), at parameters p, and computes the
// per-row context terms ctxT[l] = (ctx·Wc_l)ᵀ that group adds to the
// pre-activations. Call it after newIncBlocks or reset, before the sweep.
func (s *madeInc) setContext(p Params, ctx []float64) {
	m, n := s.m, s.n
	cd := m.cdim
	s.ctx = slices.Clone(ctx[:n*cd])
	s.wc = slices.Clone(p[m.ctxOff[m.firstCtx()]:m.np])
	w0 := m.ctxOff[m.firstCtx()]
	if s.ctxT == nil {
		s.ctxT = make([][]float64, len(m.layers))
	}
	for l, off := range m.ctxOff {
		if off < 0 {
			continue
		}
		out := m.layers[l].out
		wc := s.wc[off-w0 : off-w0+cd*out]
		ct := make([]float64, out*n)
		for j := 0; j < out; j++ {
			row := ct[j*n : (j+1)*n]
			for r := range row {
				v := 0.0
				for k := 0; k < cd; k++ {
					v += s.ctx[r*cd+k] * wc[k*out+j]
				}
				row[r] = v
			}
		}
		s.ctxT[l] = ct
	}
}

// ctxBack finishes a reverse sweep's context part: from gb.gctx, the
// gradients of the per-row context terms, it adds dWc_l += ctxᵀ·gctx_lᵀ
// into dp and sets dctx (s.n×cdim, row-major) to Σ_l gctx_lᵀ·Wc_lᵀ.
func (s *madeInc) ctxBack(gb *madeIncBack, dp Params, dctx []float64) {
	m, n := s.m, s.n
	cd := m.cdim
	w0 := m.ctxOff[m.firstCtx()]
	clear(dctx[:n*cd])
	for l, off := range m.ctxOff {
		if off < 0 {
			continue
		}
		out := m.layers[l].out
		wc := s.wc[off-w0 : off-w0+cd*out]
		dw := dp[off : off+cd*out]
		g := gb.gctx[l]
		for j := 0; j < out; j++ {
			gj := g[j*n : (j+1)*n]
			for k := 0; k < cd; k++ {
				sum := 0.0
				w := wc[k*out+j]
				for r, v := range gj {
					sum += s.ctx[r*cd+k] * v
					dctx[r*cd+k] += v * w
				}
				dw[k*out+j] += sum
			}
		}
	}
}
