package flows

// A MADE's dense pass at fixed parameters (see prepare.go): the masked
// weights of each layer, and its context weights, packed once for the
// products of small row blocks (linalg.Packed), run on the calling
// goroutine with forwardWith's bits.

import "github.com/gonormflows/flows/internal/linalg"

// preparedMADE is a MADE's dense pass at the parameters q (the prepared
// layer's copy): w[l] holds layer l's masked weights packed, wc[l] its
// context weights (nil where the layer has none).
type preparedMADE struct {
	m     *madeNet
	q     Params
	w, wc []*linalg.Packed
	outs  []int // by layer: its outputs
}

// prepareDense packs the masked weights wm (maskedWeights of q) and the
// context weights of q.
func (m *madeNet) prepareDense(q Params, wm []float64) *preparedMADE {
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

// forward is forwardWith without a tape, serial, on the packed weights:
// y (n×out) from x (n×in) and ctx (n×cdim, nil without a context), the
// same bits.
func (pm *preparedMADE) forward(x, ctx []float64, n int, y []float64) {
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
