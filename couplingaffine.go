package flows

// Coupling layers whose every column goes through Affine(S) (RealNVP's),
// written out: the same arithmetic as Affine's functions (see
// affinecoupling.go), expression for expression, so the same bits, with no
// call through the transformer's function values, no gather, and tanh and
// exp over blocks of rows by internal/vmath's vector kernels (the bits of
// math.Tanh and math.Exp). Column j's raw log-scale and shift are y[j] and
// y[d2+j] of its row, non-finite values replaced as gatherAt replaces them.

import "github.com/gonormflows/flows/internal/vmath"

// affineChunk is how many elements the loops below and MAF's take per pass
// of the vector tanh and exp: their scratch stays in the L1 cache.
const affineChunk = 512

// affineBound returns the bound S when every column goes through Affine(S)
// (RealNVP's layers), its parameters in blocks; else 0.
func (c *coupling) affineBound() float64 {
	S := c.ts[0].affineBound
	for _, t := range c.ts {
		if t.affineBound != S || !t.blocks {
			return 0
		}
	}
	if c.at.param != c.d2 {
		return 0
	}
	return S
}

// tanhExpChunks calls f for the rows [r0, r1) in chunks [c0, c1) of at
// most affineChunk elements, with h[k] = tanh(raw/S) and e[k] = exp(sS·h[k])
// at k = (i−c0)·width + j for raw = y[i·ys + off + j], j < width (a
// non-finite raw replaced as finiteParam replaces it), each with math's
// bits: sS = S gives exp(s) with s = S·tanh(raw/S), sS = −S gives exp(−s)
// ((−S)·h and −(S·h) are the same bits). MAF's and the affine coupling's
// loops share it.
func tanhExpChunks(S, sS float64, y []float64, ys, off, width, r0, r1 int, f func(h, e []float64, c0, c1 int)) {
	cr := max(1, affineChunk/width)
	sc := getScratch(2 * min(cr, r1-r0) * width)
	for c0 := r0; c0 < r1; c0 += cr {
		c1 := min(c0+cr, r1)
		n := (c1 - c0) * width
		h, e := sc.f[:n], sc.f[n:2*n]
		src := h // the raw values, gathered into h unless y holds them in one run
		if ys == width || c1-c0 == 1 {
			src = y[c0*ys+off : c0*ys+off+n]
		} else {
			for i := c0; i < c1; i++ {
				copy(h[(i-c0)*width:(i-c0+1)*width], y[i*ys+off:i*ys+off+width])
			}
		}
		// finiteParam's replacement, the quotient, tanh, the product and
		// exp in one vector pass, each with the bits of the scalar code.
		vmath.TanhExp(h, e, src, S, sS)
		f(h, e, c0, c1)
	}
	sc.put()
}

// affineSign is the factor of tanhExpChunks: exp(s) forward, exp(−s)
// inverse.
func affineSign(S float64, inverse bool) float64 {
	if inverse {
		return -S
	}
	return S
}

// affineRows is transformRows for Affine(S) on every column: rows [r0, r1)
// of u (stride us) and y (stride ys) give out's (n×dim) and logDet's.
func (c *coupling) affineRows(S float64, u []float64, us int, y []float64, ys int, out, logDet []float64, r0, r1 int, inverse bool) {
	d1, d2, dim := c.d1, c.d2, c.dim
	tanhExpChunks(S, affineSign(S, inverse), y, ys, 0, d2, r0, r1, func(h, e []float64, c0, c1 int) {
		for i := c0; i < c1; i++ {
			urow := u[i*us : i*us+dim]
			yrow := y[i*ys : i*ys+2*d2]
			orow := out[i*dim : (i+1)*dim]
			hr, er := h[(i-c0)*d2:(i-c0+1)*d2], e[(i-c0)*d2:(i-c0+1)*d2]
			copy(orow[:d1], urow[:d1])
			var sum float64
			for j, v := range urow[d1:] {
				t, _ := finiteParam(yrow[d2+j])
				s := S * hr[j]
				if inverse {
					orow[d1+j] = (v - t) * er[j]
					sum += -s
				} else {
					orow[d1+j] = v*er[j] + t
					sum += s
				}
			}
			logDet[i] = sum
		}
	})
}

// affineBackRows is the pullback's per-element work for Affine(S) on every
// column, rows [r0, r1): Affine's ForwardVJP (InverseVJP when inverse) at
// each element, its dθ scattered into dy (stride wy) as scatterAt does,
// its input gradient into du (stride dim) after the copied d1 columns of
// the output gradient gr (stride gs). u2 and w2 are the pass's input and
// output columns as the generic pullback reads them.
func (c *coupling) affineBackRows(S float64, y []float64, ys int, gr []float64, gs int, dLogDet, du, dy []float64,
	in []float64, kw int, v2 []float64, r0, r1 int, inverse bool) {
	d1, d2, dim, wy := c.d1, c.d2, c.dim, c.wy
	tanhExpChunks(S, affineSign(S, inverse), y, ys, 0, d2, r0, r1, func(h, e []float64, c0, c1 int) {
		for i := c0; i < c1; i++ {
			grow := gr[i*gs : i*gs+dim]
			drow := du[i*dim : (i+1)*dim]
			copy(drow[:d1], grow[:d1])
			yrow := y[i*ys : i*ys+2*d2]
			dyrow := dy[i*wy : (i+1)*wy]
			hr, er := h[(i-c0)*d2:(i-c0+1)*d2], e[(i-c0)*d2:(i-c0+1)*d2]
			u2, w2 := in[(i+1)*kw-d2:(i+1)*kw], v2[i*d2:(i+1)*d2]
			gl := dLogDet[i]
			for j, g := range grow[d1:] {
				hj, ej := hr[j], er[j]
				d0, dt := 0.0, 0.0 // dθ, cleared, then added into as the transformer does
				if inverse {
					x := w2[j]
					ds := -(g*x + gl)
					d0 += ds * (1 - hj*hj)
					dt += -g * ej
					drow[d1+j] = g * ej
				} else {
					x := u2[j]
					ds := g*(x*ej) + gl
					d0 += ds * (1 - hj*hj)
					dt += g
					drow[d1+j] = g * ej
				}
				if v := yrow[j]; v-v != 0 {
					d0 = 0
				}
				if v := yrow[d2+j]; v-v != 0 {
					dt = 0
				}
				dyrow[j], dyrow[d2+j] = d0, dt
			}
		}
	})
}
