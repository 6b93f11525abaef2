package flows

// MAF's elementwise work, written out.
//
// MAF is MaskedAutoregressive over invertTransformer(Affine(S)) with θ
// read as [raw, t] from the MADE's blocks [μ | raw]. The generic layer
// gathers θ for every element (through the order, with a check for
// non-finite values per parameter) and calls the transformer through two
// function values; at D = 64 that bookkeeping cost as much as the
// arithmetic. These loops do the same arithmetic, expression for
// expression (so the bits are the same, which the pins check), reading μ
// and raw from the MADE's row directly: Affine's Inverse for Direct and
// its InverseVJP for Direct's pullback.

import "math"

// finiteParam is gather's replacement of a non-finite conditioner output
// (+Inf → MaxFloat64, −Inf → −MaxFloat64, NaN → 0); fixed reports one.
func finiteParam(v float64) (float64, bool) {
	if v-v == 0 {
		return v, false
	}
	switch {
	case math.IsNaN(v):
		return 0, true
	case v > 0:
		return math.MaxFloat64, true
	}
	return -math.MaxFloat64, true
}

// mafRows is transformRows for MAF: rows [r0, r1) of z and ld from x and
// the MADE's output y (n×2·dim, [μ | raw]), with log-scale bound S. Per
// element: s = S·tanh(raw/S), z = (x − μ)·exp(−s), ld += −s (each as
// Affine's Inverse computes it), tanh and exp from tanhExpChunks.
func mafRows(S float64, dim int, y, xs, z, ld []float64, r0, r1 int) {
	mafRowsTo(S, dim, y, xs, z, ld, r0, r1, nil)
}

// mafRowsTo is mafRows writing column i of each row of z at pos[i]
// (pos nil: at i), so that a permutation after the layer costs no pass of
// its own (preparedRows.directTo); the values and log-dets are mafRows's.
func mafRowsTo(S float64, dim int, y, xs, z, ld []float64, r0, r1 int, pos []int) {
	w := 2 * dim
	tanhExpChunks(S, -S, y, w, dim, dim, r0, r1, func(h, e []float64, c0, c1 int) {
		for r := c0; r < c1; r++ {
			xr := xs[r*dim : (r+1)*dim]
			mu := y[r*w : r*w+dim][:len(xr)] // the lengths: no bounds checks below
			hr, er := h[(r-c0)*dim:][:len(xr)], e[(r-c0)*dim:][:len(xr)]
			zr := z[r*dim : (r+1)*dim]
			sum := 0.0
			for i, xi := range xr {
				t := mu[i]
				if t-t != 0 { // not finite: rare
					t, _ = finiteParam(t)
				}
				s := S * hr[i]
				k := i
				if pos != nil {
					k = pos[i]
				}
				zr[k] = (xi - t) * er[i]
				sum += -s
			}
			ld[r] = sum
		}
	})
}

// mafBackRows is the per-element part of MAF's Direct pullback for rows
// [r0, r1): from dz = g and dLogDet it sets the MADE's output gradient dy
// (n×2·dim) and the diagonal term ddiag (n×dim), at the pass's z and y.
// A non-finite output of the MADE gets zero gradient.
func mafBackRows(S float64, dim int, y, zs, g, dLogDet, dy, ddiag []float64, r0, r1 int) {
	w := 2 * dim
	// Affine's InverseVJP: h = tanh(raw/S), e = exp(−S·h).
	tanhExpChunks(S, -S, y, w, dim, dim, r0, r1, func(hs, es []float64, c0, c1 int) {
		for r := c0; r < c1; r++ {
			mafBackRow(dim, y[r*w:(r+1)*w], hs[(r-c0)*dim:], es[(r-c0)*dim:], zs[r*dim:], g[r*dim:],
				dLogDet[r], dy[r*w:(r+1)*w], ddiag[r*dim:])
		}
	})
}

// mafBackRow is mafBackRows for one row, given h and e.
func mafBackRow(dim int, y, h, e, zs, g []float64, gl float64, dy, ddiag []float64) {
	mu, raw := y[:dim], y[dim:2*dim]
	dmu, draw := dy[:dim], dy[dim:2*dim]
	for i := 0; i < dim; i++ {
		_, fixedRaw := finiteParam(raw[i])
		_, fixedMu := finiteParam(mu[i])
		// Affine's InverseVJP at y = x_i, x = z_i, gx = g_i.
		hi, ei := h[i], e[i]
		ds := -(g[i]*zs[i] + gl)
		d0, d1 := 0.0, 0.0 // dθ, cleared, then added into as the transformer does
		d0 += ds * (1 - hi*hi)
		d1 += -g[i] * ei
		ddiag[i] = g[i] * ei
		if fixedRaw {
			d0 = 0
		}
		if fixedMu {
			d1 = 0
		}
		draw[i], dmu[i] = d0, d1
	}
}

// mafInverseStep is one step of MAF's inverse sweep over the n rows of a
// chunk: column i of x (xrow, n) from column i of z (n×dim) and the step's
// MADE outputs o, μ's n then raw's n. Per row, as Affine's Forward:
// s = S·tanh(raw/S), x = z·exp(s) + μ, ld += s, tanh and exp from
// tanhExpChunks.
func mafInverseStep(S float64, dim, i int, o, z, xrow, ld []float64) {
	n := len(xrow)
	tanhExpChunks(S, S, o, 0, n, n, 0, 1, func(h, e []float64, _, _ int) {
		for r := range xrow {
			t, _ := finiteParam(o[r])
			s := S * h[r]
			xrow[r] = z[r*dim+i]*e[r] + t
			ld[r] += s
		}
	})
}
