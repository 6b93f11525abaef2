package flows

import "slices"

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
	pooled        []*scratch // lvBuf's and outBuf's, when pooled (see release)
	serial        bool       // products on the calling goroutine alone (a prepared layer's row block)

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

// incBlocks copies the weight blocks of the incremental evaluation from p
// into blk (m.inc.size entries, every one written), once per call: every
// row chunk of the call shares them.
func (m *madeNet) incBlocks(p Params, blk []float64) {
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
}

// newIncBlocks starts an incremental evaluation of up to n rows at
// parameters p, with blk holding m.incBlocks(p). The caller fills lv[0] row
// b−1 (input perm[b−1], degree b) before asking for anything of degree > b.
// Every value is written before it is read, so the buffers need no
// clearing when reset reuses them for another chunk. With vjp the buffers
// are new (the pullback keeps them); without, they are pooled, and the
// caller gives them back with release.
func (m *madeNet) newIncBlocks(p Params, blk []float64, n int, vjp bool) *madeInc {
	s := &madeInc{m: m, p: p, blk: blk}
	alloc := func(size int) []float64 {
		if vjp {
			return make([]float64, size)
		}
		b := getScratch(size)
		s.pooled = append(s.pooled, b)
		return b.f
	}
	L := len(m.layers)
	s.lvBuf = make([][]float64, L)
	s.lvBuf[0] = alloc(m.in * n)
	if vjp && m.keepPre {
		s.preBuf = make([][]float64, L)
	}
	for v := 1; v < L; v++ {
		s.lvBuf[v] = alloc(m.layers[v-1].out * n)
		if s.preBuf != nil {
			s.preBuf[v] = make([]float64, m.layers[v-1].out*n)
		}
	}
	s.outBuf = alloc(m.k * n)
	s.lv = make([][]float64, L)
	if s.preBuf != nil {
		s.pre = make([][]float64, L)
	}
	s.reset(n)
	return s
}

// release gives back the pooled buffers of an evaluation made without vjp;
// s must not be used afterwards.
func (s *madeInc) release() {
	for _, b := range s.pooled {
		b.put()
	}
	s.pooled = nil
	s.lvBuf, s.lv, s.outBuf, s.out = nil, nil, nil, nil
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
	s.m.product(s.serial)(true, false, bl.cols, n, bl.rows, 1, s.blk[bl.off:bl.off+bl.rows*bl.cols], s.lv[l][:bl.rows*n], 1, dst[:bl.cols*n])
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

// reuseBack starts a reverse sweep: zero gradient buffers for every level,
// reusing those of gb when it is not nil (a previous chunk's, of at least
// as many rows); the caller fills grad[0] with the gradient of the inputs
// (transposed, rows in sorted order) it received.
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
	s.m.gemm(false, true, bl.rows, bl.cols, n, 1, s.lv[l][:bl.rows*n], g[:bl.cols*n], 0, dWb)
	for r, a := range s.m.inc.sorted[l][:bl.rows] {
		row := dp[li.w+a*li.out : li.w+(a+1)*li.out]
		for c, j := range grp {
			row[j] += dWb[r*bl.cols+c]
		}
	}
	wb := s.blk[bl.off : bl.off+bl.rows*bl.cols]
	s.m.gemm(false, false, bl.rows, n, bl.cols, 1, wb, g[:bl.cols*n], 1, gb.grad[l][:bl.rows*n])
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
