package flows

// A MADE's dense pass at fixed parameters (see prepare.go): the masked
// weights of each layer, and its context weights, packed once for the
// products of small row blocks (linalg.Packed), run on the calling
// goroutine with forwardWith's bits. With sorted degrees (SortedDegrees)
// each product skips the masks' zero blocks (linalg.MulExt, MulExt32) as
// the unprepared pass does (see madeblocks.go).

import "github.com/gonormflows/flows/internal/linalg"

// preparedMADE is a MADE's dense pass at the parameters q (the prepared
// layer's copy): in Float64, w[l] holds layer l's masked weights packed,
// wc[l] its context weights (nil where the layer has none); in Float32,
// n32 holds them rounded to float32 and packed (see net32), for
// net32.forward, or, with sorted degrees, for forward32.
type preparedMADE struct {
	m     *madeNet
	q     Params
	w, wc []*linalg.Packed
	outs  []int // by layer: its outputs
	n32   *net32
}

// prepareDense packs the masked weights wm (maskedWeights of q) and the
// context weights of q, in the MADE's precision.
func (m *madeNet) prepareDense(q Params, wm []float64) *preparedMADE {
	if m.prec == Float32 {
		return &preparedMADE{m: m, q: q, n32: m.prepare32(q, wm)}
	}
	pm := &preparedMADE{m: m, q: q, w: make([]*linalg.Packed, len(m.layers)), wc: make([]*linalg.Packed, len(m.layers)), outs: make([]int, len(m.layers))}
	for l, li := range m.layers {
		pm.outs[l] = li.out
		pm.w[l] = linalg.PackB(li.in, li.out, wm[li.mw:li.mw+li.in*li.out])
		if m.ctxOff != nil && m.ctxOff[l] >= 0 {
			off := m.ctxOff[l]
			pm.wc[l] = linalg.PackB(m.cdim, li.out, q[off:off+m.cdim*li.out])
		}
	}
	return pm
}

// forward is forwardWith without a tape, serial, on the packed weights
// (float64 or float32, the MADE's precision):
// y (n×out) from x (n×in) and ctx (n×cdim, nil without a context), the
// same bits.
func (pm *preparedMADE) forward(x, ctx []float64, n int, y []float64) {
	switch {
	case pm.n32 != nil && pm.m.layers[0].ext != nil:
		pm.forward32(x, ctx, n, y)
		return
	case pm.n32 != nil:
		pm.n32.forward(x, ctx, n, y)
		return
	}
	runLayers(pm.outs, pm.m.maxHidden, x, n, y, func(l int, h, c []float64, hidden bool) {
		pm.layer(l, h, ctx, n, c, hidden)
	})
}

// layer sets c (n×out_l) to layer l's pre-activation, bias, then x·Wm_l,
// then ctx·Wc_l where the layer has context weights, each product added
// as forwardWith adds it, and, when hidden, applies the activation.
func (pm *preparedMADE) layer(l int, x, ctx []float64, n int, c []float64, hidden bool) {
	li := pm.m.layers[l]
	b := pm.q[li.b : li.b+li.out]
	if li.ext != nil && (ctx == nil || pm.wc[l] == nil) && pm.w[l].OneBlock() && li.ext.fwd.NonEmpty(li.in) {
		// As packedLayer: the product alone, then the bias and the
		// activation in one pass (acc + b is fma(1, acc, b)).
		linalg.MulExt(pm.w[l], n, x, 0, c, &li.ext.fwd)
		biasAct(c, b, n, pm.m.act, hidden)
		return
	}
	if li.ext != nil {
		fillBias(c, b, n)
		linalg.MulExt(pm.w[l], n, x, 1, c, &li.ext.fwd)
		if ctx != nil && pm.wc[l] != nil {
			pm.wc[l].MulAdd(n, ctx, c)
		}
		if hidden {
			pm.m.act.apply(c, c)
		}
		return
	}
	if ctx == nil || pm.wc[l] == nil {
		packedLayer(pm.w[l], b, x, n, c, pm.m.act, hidden)
		return
	}
	fillBias(c, b, n)
	pm.w[l].MulAdd(n, x, c)
	pm.wc[l].MulAdd(n, ctx, c)
	if hidden {
		pm.m.act.apply(c, c)
	}
}

// prepare32 returns the MADE's dense pass in Float32 on the masked weights
// wm (maskedWeights of q) and the context weights of q.
func (m *madeNet) prepare32(q Params, wm []float64) *net32 {
	ls := make([]layer32, len(m.layers))
	for l, li := range m.layers {
		ls[l] = layer32{w: linalg.PackB32(li.in, li.out, wm[li.mw:li.mw+li.in*li.out]), b: q[li.b : li.b+li.out]}
		if m.ctxOff != nil && m.ctxOff[l] >= 0 {
			off := m.ctxOff[l]
			ls[l].wc = linalg.PackB32(m.cdim, li.out, q[off:off+m.cdim*li.out])
		}
	}
	return newNet32(ls, m.act)
}

// forward32 is forwardWith without a tape in Float32, serial, on the packed
// weights of pm.n32 (prepare32), with sorted degrees: each product on its used blocks
// (linalg.MulExt32): per layer c = b, the product and then the context
// product added (MulAdd32: GemmF32's bits), the activation stored in
// float32; the same bits as forwardWith.
func (pm *preparedMADE) forward32(x, ctx []float64, n int, y []float64) {
	m := pm.m
	last := len(m.layers) - 1
	size := n * m.maxHidden
	words := Float32.words(size)
	buf := getScratch(size + 2*words)
	defer buf.put()
	c := buf.f[:size]
	hs := [2][]float32{Float32.view(buf.f[size:size+words], size).f32, Float32.view(buf.f[size+words:], size).f32}
	var h []float32
	for l, li := range m.layers {
		out := c[:n*li.out]
		if l == last {
			out = y[:n*li.out]
		}
		l32 := &pm.n32.layers[l]
		fused := l32.fused() && li.ext.fwd.NonEmpty(li.in) // as net32: the bias and activation after the product
		beta := 1.0
		if fused {
			beta = 0
		} else {
			fillBias(out, l32.b, n)
		}
		if l == 0 {
			linalg.MulExt32(l32.w, n, x, beta, out, &li.ext.fwd)
		} else {
			linalg.MulExt32(l32.w, n, h, beta, out, &li.ext.fwd)
		}
		if ctx != nil && l32.wc != nil {
			linalg.MulAdd32(l32.wc, n, ctx, out)
		}
		var post []float32
		if l < last {
			post = hs[l%2][:n*li.out]
		}
		switch {
		case fused && l < last:
			for i := range n {
				biasAct32(m.act, post[i*li.out:(i+1)*li.out], out[i*li.out:(i+1)*li.out], l32.b)
			}
		case fused:
			biasAct(out, l32.b, n, m.act, false)
		case l < last:
			applyAct(m.act, post, out)
		}
		h = post
	}
}

// biasAct adds b to each of the n rows of c (n×len(b)) and, when hidden,
// applies act, in one pass: packedLayer's bits (v + b, or linalg.BiasReLU
// for ReLU).
func biasAct(c, b []float64, n int, act Activation, hidden bool) {
	out := len(b)
	for i := range n {
		row := c[i*out : (i+1)*out]
		switch {
		case hidden && act == ReLU:
			linalg.BiasReLU(row, row, b)
		case hidden:
			for j, v := range row {
				row[j] = v + b[j]
			}
			act.apply(row, row)
		default:
			for j, v := range row {
				row[j] = v + b[j]
			}
		}
	}
}
