package flows

// A MADE's context: the weights that let a conditional MADE's first layer
// and output layer see the context columns (addContext), and their place
// in the dense pass.

// addContext gives the MADE cdim ≥ 1 context columns and returns p with
// their weights appended. The context has degree 0 in the mask recipe: it
// may feed every unit. It enters the first
// layer (every hidden unit, or every output when there are no hidden
// layers) and, when there are hidden layers, the output layer directly as
// well, so that the outputs of the first input in the ordering (which see
// no hidden unit) still depend on it. In both places it adds ctx·Wc_l to
// the layer's pre-activation. Parameter layout: the MADE's, then
//
//	[… | Wc_0 (cdim×out_0) | Wc_L (cdim×out), when there are hidden layers]
//
// with Wc_0 into hidden units drawn like the hidden weights (uniform on
// (−a, a), the fan-in counting the context) and the output weights zero, so
// the outputs are still identically zero at init. The weights are drawn
// from key.Fold("context"), a stream apart from the other weights', so a
// MADE's other parameters do not depend on whether it has a context.
func (m *madeNet) addContext(p Params, cfg MADEConfig, key Key, cdim int) Params {
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
			a := cfg.Init.scale(cfg.Act, li.in+cdim, li.out)
			for i := range w {
				w[i] = a * (2*rng.Float64() - 1)
			}
		}
		p = append(p, w...)
	}
	m.np = len(p)
	return p
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

// addCtx adds ctx·Wc_l (n×out_l) into c, when layer l has context weights;
// with serial, on the calling goroutine alone.
func (m *madeNet) addCtx(p Params, l int, ctx []float64, n int, c []float64, serial bool) {
	off := m.ctxOff[l]
	if off < 0 {
		return
	}
	out := m.layers[l].out
	m.product(serial)(false, false, n, out, m.cdim, 1, ctx[:n*m.cdim], p[off:off+m.cdim*out], 1, c[:n*out])
}
