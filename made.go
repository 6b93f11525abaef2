package flows

// MADE, the masked autoencoder for distribution estimation (Germain,
// Gregor, Murray and Larochelle, 2015), the conditioner of the masked
// autoregressive layers; its incremental evaluation, for their inverse, is
// in madeinc.go.
//
// # Masks, by degrees
//
// The recipe of Germain et al. Input i gets degree d(i) = its 1-based
// position in the ordering (1, …, dim). Hidden unit k of every hidden layer
// gets degree 1 + (k mod max(dim−1, 1)), cycling through 1, …, dim−1, so
// every degree is present when the layer is at least dim−1 wide. Output
// column k·dim + i gets degree d(i). A weight from a node of degree a to a
// hidden unit of degree b is used when a ≤ b; a weight into an output of
// degree b is used when a < b. So a hidden unit of degree b sees inputs of
// degree ≤ b, and the outputs for input i see inputs of degree < d(i):
// exactly the inputs before i when every hidden layer is at least dim−1
// wide (narrower layers see fewer of them, but every output except the
// first input's is still reached). With Degrees = SortedDegrees the hidden
// units get the same degrees sorted in increasing order, which makes the
// masks block-triangular and lets the products skip their zero blocks
// when the hidden layers are at least 128 wide (see madeblocks.go); the default, CyclicDegrees, is the recipe above.
// For dim 1 there are no valid degrees for
// hidden units (jax-flows' recipe divides by zero there): the rule above
// gives them degree 1, so they see the input but feed nothing, and the
// outputs are their biases alone: a MAF of dim 1 is an elementwise affine
// map.
//
// # Parameters and initialisation
//
// The layout is MLP's, the full matrices of every layer l = 0, …,
// len(Hidden) (widths in_0 = in, out_l = Hidden[l] and out for the last
// layer), with y_l = x_l·(W_l ⊙ M_l) + b_l. The masked entries of W_l
// (M_l = 0) are kept so that the layout matches MLP's: their values are
// never read, and the pullback adds exactly zero to their gradient. They
// are zero at init, stay zero under any optimiser that moves a parameter
// only along its gradient, and may hold anything (even NaN) without
// changing the output.
//
// Initialisation follows MLP: hidden weights uniform on (−a, a) with a as
// cfg.Init says (for the default InitHe, a = √(6/(in_l+out_l)) for Tanh and
// √(6/in_l) otherwise; the unmasked fan-in is smaller, which only shrinks
// the initial activations), drawn from key.Split(L+1)[l] for layer l of L,
// one draw for every entry, masked or not, so that the masks never shift
// the stream; zero biases; and a zero last layer, so the output is
// identically zero at init (a MAF starts as the identity). RandomOrder
// draws the ordering from key.Split(L+1)[L].

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
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
	// Init is how the hidden weights are drawn (default InitDefault, which
	// is InitHe; see Init).
	Init Init
	// Precision is the arithmetic of the products (default Float64; see
	// Precision), in the dense pass and in a MAF's sampling alike.
	Precision Precision
	// Degrees is how the hidden units get their degrees (default
	// CyclicDegrees, Germain et al.'s recipe; SortedDegrees gives the
	// same degrees in increasing order, whose masked products skip their
	// zero blocks: see Degrees and made.go's file comment).
	Degrees Degrees

	skipAlways bool // skip the unused blocks at any width (the tests' MADESkipAlways)
}

// MADE returns a masked autoencoder for distribution estimation (Germain et
// al., 2015): an MLP whose weights are multiplied by fixed binary masks so
// that it is autoregressive. Made with in = dim input columns and
// out = K·dim output columns (K ≥ 1, the outputs per input), it maps x
// (n×dim) to y (n×K·dim) where column k·dim + i is the k-th output for
// input i, and that column depends only on the inputs that come before
// input i in cfg.Order (all of them when every hidden layer is at least
// dim−1 wide). The outputs for the first input of the ordering are
// constants (their biases). The masks, dim 1 and the initialisation are in
// made.go's file comment.
//
// Parameter layout: exactly MLP's, [W_0 (in_0×out_0, row-major) | b_0 |
// W_1 | b_1 | … ], masks and all: the masked entries are never read, get
// exactly zero gradient, and are zero at init. Hidden weights are drawn as
// cfg.Init says; the last layer is zero, so the output is zero at init.
//
// Init returns an error (starting "flows: MADE:") for in < 1, out not a
// positive multiple of in, a hidden width < 1, or an unknown activation,
// order or init. Apply and ApplyVJP panic for a batch without in columns or
// parameters of the wrong length. The pullback returned by ApplyVJP keeps
// its own copy of x, so it may be called after x changes, and reads p,
// which must not change until its last call (as for MLP: take the
// optimiser step after the backward pass); it may be called any number of
// times, from any goroutine.
func MADE(cfg MADEConfig) NetInitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden) // the caller may reuse its slice
	return func(key Key, in, out int) (Params, Net, error) {
		p, m, err := newMADE("MADE", cfg, key, in, out, 0)
		if err != nil {
			return nil, Net{}, err
		}
		return p, Net{Apply: m.apply, ApplyVJP: m.applyVJP}, nil
	}
}

// madeLayer is one masked dense layer's place in the flat parameter vector.
type madeLayer struct {
	in, out int
	w, b    int          // offsets of W (in×out, row-major) and b (out) in p
	mw      int          // offset of this layer's masked weights in a buffer of madeNet.nw entries
	mask    []bool       // in×out, row-major: true where the weight is used
	ext     *madeExtents // the used part of the products (SortedDegrees), or nil: the whole
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
	prec       Precision // the products' and the dense pass's hidden layers' storage
	gemm       gemmFunc  // the products, by Precision
	gemmSerial gemmFunc  // the same on the calling goroutine alone

	// Context (addContext): cdim context columns enter layer l's
	// pre-activation through the weights at ctxOff[l] (cdim×out_l,
	// row-major), or not at all when ctxOff[l] < 0; ctxOff is nil
	// without a context.
	cdim   int
	ctxOff []int
}

// newMADE builds a MADE with cdim ≥ 0 context columns (see addContext);
// who names the layer in errors ("flows: who: …") and panics.
func newMADE(who string, cfg MADEConfig, key Key, in, out, cdim int) (Params, *madeNet, error) {
	if cdim < 0 {
		return nil, nil, fmt.Errorf("flows: %s: context dimension %d, need at least 0", who, cdim)
	}
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
	if !cfg.Init.valid() {
		return nil, nil, fmt.Errorf("flows: %s: unknown init %v", who, cfg.Init)
	}
	if !cfg.Degrees.valid() {
		return nil, nil, fmt.Errorf("flows: %s: unknown degrees %v", who, cfg.Degrees)
	}
	if !cfg.Precision.valid() {
		return nil, nil, fmt.Errorf("flows: %s: unknown precision %v", who, cfg.Precision)
	}
	if err := checkWidths(who, append(append([]int{in + cdim}, cfg.Hidden...), out)...); err != nil {
		return nil, nil, err
	}
	dim := in
	L := len(cfg.Hidden) + 1
	keys := key.Split(L + 1)

	m := &madeNet{who: who, in: in, out: out, k: out / in, act: cfg.Act, keepPre: cfg.Act.needsPre(), prec: cfg.Precision, gemm: cfg.Precision.gemm(false), gemmSerial: cfg.Precision.gemm(true)}
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
	for l, h := range cfg.Hidden {
		degs[l+1] = cfg.Degrees.hiddenDegrees(h, dim)
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
		if cfg.Degrees == SortedDegrees && skipPays(cfg) {
			li.ext = newMADEExtents(li.mask, li.in, li.out)
		}
		m.layers[l] = li
	}

	p := make(Params, m.np) // zero biases and a zero last layer
	for l, li := range m.layers[:L-1] {
		a := cfg.Init.scale(cfg.Act, li.in, li.out)
		rng := keys[l].Rand()
		for i, used := range li.mask {
			v := a * (2*rng.Float64() - 1) // drawn for every entry: masks never shift the stream
			if used {
				p[li.w+i] = v
			}
		}
	}
	m.inc = newMADEIncShape(m, degs)
	if cdim > 0 {
		p = m.addContext(p, cfg, key, cdim)
	}
	return p, m, nil
}

// maskedWeights sets wm (m.nw entries) to W_l ⊙ M_l for every layer
// (layer l at layers[l].mw). Masked entries are set to +0 whatever they
// hold, so that they cannot matter even when they hold NaN or ±Inf: the
// bits are and-ed with the mask, without a branch (the masks' pattern
// defeats the branch predictor).
func (m *madeNet) maskedWeights(p Params, wm []float64) {
	for _, li := range m.layers {
		src := p[li.w:li.b]
		dst := wm[li.mw : li.mw+li.in*li.out]
		src, dst = src[:len(li.mask)], dst[:len(li.mask)]
		for i, used := range li.mask {
			var keep uint64
			if used {
				keep = math.MaxUint64
			}
			dst[i] = math.Float64frombits(math.Float64bits(src[i]) & keep)
		}
	}
}

// masksClear reports whether every masked weight in p is +0 (as at init,
// and after any optimiser step along the gradient, which is exactly zero
// there): then p's weights are their own masked weights, bit for bit, and
// the dense pass reads them in place instead of copying them
// (maskedWeights), which a training step in chunks of rows did once per
// chunk. Reading p and the masks costs about half the copy, with no
// writes.
func (m *madeNet) masksClear(p Params) bool {
	for _, li := range m.layers {
		src := p[li.w:li.b]
		src = src[:len(li.mask)]
		var bad uint64
		for i, used := range li.mask {
			drop := uint64(math.MaxUint64)
			if used {
				drop = 0
			}
			bad |= math.Float64bits(src[i]) & drop
		}
		if bad != 0 {
			return false
		}
	}
	return true
}

// weights returns the layer's masked weights: in wm at li.mw, or, when wm
// is nil, p's own (whose masked entries are +0, see masksClear).
func (li madeLayer) weights(p Params, wm []float64) []float64 {
	if wm == nil {
		return p[li.w:li.b]
	}
	return wm[li.mw : li.mw+li.in*li.out]
}

// affine sets c (n×li.out) to x·Wm + b, with x n×li.in and Wm the layer's
// masked weights (weights), with pr's product (serial: on the calling
// goroutine alone).
func (li madeLayer) affine(pr Precision, serial bool, p Params, wm []float64, x acts, n int, c []float64) {
	fillRows(c, p[li.b:li.b+li.out], n)
	li.mulW(pr, serial, x, li.weights(p, wm), n, 1, c)
}

// product returns the net's product (its Precision's), on the calling
// goroutine alone when serial, else on the helper pool: the same bits.
func (m *madeNet) product(serial bool) gemmFunc {
	if serial {
		return m.gemmSerial
	}
	return m.gemm
}

// madeTape is what the dense pass keeps for its pullback: private copies of
// the batch and the context, the parameters themselves (which, as for MLP,
// must not change until the pullback's last call: a copy of a large MADE's
// parameters per step cost more memory than the rest of a training step),
// and the masked weights and hidden layers (in the precision's storage)
// on a pooled tape, which the pullback's first call gives back (a later
// call reruns the pass for a new pullback, and calls that).
type madeTape struct {
	tape
	n      int
	p      []float64   // the parameters, not a copy
	wm     []float64   // the masked weights (pooled, on the tape), or nil: p's own (masksClear)
	inputs [][]float64 // inputs[0]: a copy of x (n×in); the rest unused
	hidden []acts      // hidden[l]: layer l's input (n×in_l) for l ≥ 1
	pres   []acts      // pre-activations of the hidden layers, kept only when act needs them
	ctx    []float64   // a copy of the context (n×cdim), nil without one
}

// input returns layer l's input.
func (t *madeTape) input(l int) acts {
	if l == 0 {
		return f64(t.inputs[0])
	}
	return t.hidden[l]
}

// newTape returns a tape holding p and copies of x (n×in) and ctx
// (n×cdim, or nil), for forward to fill.
func (m *madeNet) newTape(p Params, x, ctx []float64, n int) *madeTape {
	t := &madeTape{n: n, p: p, inputs: [][]float64{slices.Clone(x[:n*m.in])}, hidden: make([]acts, len(m.layers))}
	if ctx != nil {
		t.ctx = slices.Clone(ctx[:n*m.cdim])
	}
	return t
}

// forward is the dense (parallel) pass on x (n×in, row-major, not
// modified) given the context ctx (n×m.cdim, row-major, not modified; nil
// when m.cdim is 0): layer l's pre-activation gains ctx·Wc_l for every
// layer with context weights. It writes the output into y (n×out) and,
// when t is not nil (see newTape), keeps the masked weights and the hidden
// layers on t's pooled tape for the pullback. Without a tape the masked
// weights and the hidden layers are pooled for the call. When every
// masked weight of p is +0 (masksClear), the products read p's weights
// in place, with the same bits.
func (m *madeNet) forward(p Params, x, ctx []float64, n int, t *madeTape, y []float64) {
	var wm []float64
	switch {
	case m.masksClear(p):
	case t != nil:
		wm = t.get(m.nw)
		t.wm = wm
		m.maskedWeights(p, wm)
	default:
		wmBuf := getScratch(m.nw)
		defer wmBuf.put()
		wm = wmBuf.f
		m.maskedWeights(p, wm)
	}
	m.forwardWith(p, wm, x, ctx, n, t, y, false)
}

// forwardWith is forward with the masked weights wm (m.maskedWeights of
// p; nil when p's own are, see masksClear) given: a prepared MADE
// computes them once. With serial, the products
// and activations run on the calling goroutine alone (the caller runs
// row blocks in parallel); the bits are the same either way. The hidden
// layers are in the precision's storage; x, ctx and y stay float64.
func (m *madeNet) forwardWith(p Params, wm, x, ctx []float64, n int, t *madeTape, y []float64, serial bool) {
	last := len(m.layers) - 1
	h := f64(x)
	var cBuf *scratch // with a tape in Float32 mode, the pre-activations
	var hb hiddenBufs // without a tape, the hidden layers
	switch {
	case last == 0:
	case t == nil:
		hb = newHiddenBufs(m.prec, n*m.maxHidden)
		defer hb.put()
	case m.prec == Float32:
		cBuf = getScratch(n * m.maxHidden)
		defer cBuf.put()
	}
	if t != nil {
		t.pres = make([]acts, last)
	}
	for l, li := range m.layers[:last] {
		product := func(c []float64) {
			li.affine(m.prec, serial, p, wm, h, n, c)
			if ctx != nil {
				m.addCtx(p, l, ctx, n, c, serial)
			}
		}
		if t != nil {
			var c []float64
			if cBuf != nil {
				c = cBuf.f[:n*li.out]
			}
			h, t.pres[l] = hiddenVJP(m.prec, m.act, &t.tape, n, li.out, c, product)
			t.hidden[l+1] = h
			continue
		}
		c, post := hb.layer(l, n*li.out)
		product(c)
		m.act.applyActs(post, c, n, li.out, serial)
		h = post
	}
	y = y[:n*m.out]
	m.layers[last].affine(m.prec, serial, p, wm, h, n, y)
	if ctx != nil {
		m.addCtx(p, last, ctx, n, y, serial)
	}
}

// backward is the pullback of the dense pass: given g = dL/dy (n×out,
// read only) it adds dL/dparams into dp and returns dL/dx (n×in, new); with
// a context it adds dL/dctx into dctx (n×cdim; nil without one).
//
// Layer l computes y_l = x_l·(W_l ⊙ M_l) + b_l, so with g_l = dL/dy_l
//
//	dW_l += M_l ⊙ (x_lᵀ·g_l)   (in_l×out_l: the masked entries get exactly 0),
//	db_l += Σ_rows g_l,
//	dx_l  = g_l·(W_l ⊙ M_l)ᵀ   (n×in_l),
//
// and for a hidden layer x_{l+1} = act(a_l), so g_{l−1} = dx_l ⊙ act'(a_{l−1}).
// For a layer with context weights, whose pre-activation gains ctx·Wc_l,
// with g_l = dL/d(pre-activation),
//
//	dWc_l += ctxᵀ·g_l,   dctx += g_l·Wc_lᵀ.
//
// The masked weights are the forward pass's, on the tape; the
// weight-gradient scratch and the gradients between layers are pooled
// (dx_l in float64, g_{l−1} in the precision's storage, in place in
// Float64 mode). The caller has taken the tape (see tape.take) and
// releases it.
func (m *madeNet) backward(t *madeTape, dy []float64, dp Params, dctx []float64) []float64 {
	n := t.n
	sBuf := getScratch(m.maxW)
	defer sBuf.put()
	wm := t.wm
	g := f64(dy)
	var gBuf *scratch // g's pooled buffer; nil while g is the caller's
	for l := len(m.layers) - 1; ; l-- {
		li := m.layers[l]
		if t.ctx != nil && m.ctxOff[l] >= 0 {
			off := m.ctxOff[l]
			wc := f64(t.p[off : off+m.cdim*li.out])
			m.prec.mul(false, true, false, m.cdim, li.out, n, 1, f64(t.ctx), g, 1, dp[off:off+m.cdim*li.out])
			m.prec.mul(false, false, true, n, m.cdim, li.out, 1, g, wc, 1, dctx)
		}
		s := sBuf.f[:li.in*li.out]
		li.gradW(m.prec, t.input(l), g, n, s)
		addMasked(dp[li.w:li.b], s, li.mask)
		addColSums(dp[li.b:li.b+li.out], g, n, li.out)
		g, gBuf = m.backLayer(l, t, g, gBuf, li.weights(t.p, wm))
		if l == 0 {
			return g.f64
		}
	}
}

// addMasked adds s[i] into dW[i] where mask[i] is set and exactly +0
// elsewhere (which leaves every value but −0 as it was), without a branch:
// the masks' pattern defeats the branch predictor.
func addMasked(dW, s []float64, mask []bool) {
	s = s[:len(mask)]
	dW = dW[:len(mask)]
	for i, used := range mask {
		var keep uint64
		if used {
			keep = math.MaxUint64
		}
		dW[i] += math.Float64frombits(math.Float64bits(s[i]) & keep)
	}
}

// apply is Net.Apply.
func (m *madeNet) apply(p Params, x *mat.Dense) *mat.Dense {
	checkParams(m.who, p, m.np)
	checkWidth(m.who, x, m.in)
	xs, n, _ := rawRows(x)
	y := make([]float64, n*m.out)
	m.forward(p, xs, nil, n, nil, y)
	return mat.NewDense(n, m.out, y)
}

// applyVJP is Net.ApplyVJP.
func (m *madeNet) applyVJP(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
	checkParams(m.who, p, m.np)
	checkWidth(m.who, x, m.in)
	xs, n, _ := rawRows(x)
	y := make([]float64, n*m.out)
	t := m.newTape(p, xs, nil, n)
	m.forward(p, xs, nil, n, t, y)
	back := func(dy *mat.Dense, dp Params) *mat.Dense {
		if dy == nil {
			panic("flows: " + m.who + ": nil gradient in pullback")
		}
		if r, c := dy.Dims(); r != n || c != m.out {
			panic(fmt.Sprintf("flows: %s: pullback gradient is %d×%d, want %d×%d", m.who, r, c, n, m.out))
		}
		checkParams(m.who+": pullback", dp, m.np)
		if !t.take() { // a later call: the first gave the tape back
			_, again := m.applyVJP(t.p, mat.NewDense(n, m.in, t.inputs[0]))
			return again(dy, dp)
		}
		defer t.release()
		g, _, _ := rawRows(dy)
		dx := m.backward(t, g, dp, nil)
		return mat.NewDense(n, m.in, dx)
	}
	return mat.NewDense(n, m.out, y), back
}
