package flows

// A coupling layer at fixed parameters (see prepare.go): its conditioner
// prepared (a net with a prepare hook: MLP), and row maps that embed a
// block's rows, run the net and the transformers on them on the calling
// goroutine, into pooled buffers.

import (
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// prepare is the layer's Prepare when its net has a prepare hook: the net
// prepared at p, and row maps for both directions.
func (c *coupling) prepare(p Params) PreparedBijection {
	checkParams(c.who, p, c.np)
	net := c.net.prepare(p)
	return withRows(c.who, &preparedRows{dim: c.dim, cdim: c.cdim, direct: c.rows(net, false), inverse: c.rows(net, true)})
}

// rows returns the row map of the layer (inverse: of its inverse) with the
// prepared conditioner net: the bits of forward's pass, row by row.
func (c *coupling) rows(net preparedNet, inverse bool) rowMap {
	S := c.affineBound()
	return func(dst, src, ctx []float64, n int, ld []float64, serial bool) {
		buf := getScratch(n * (c.win + c.wy))
		defer buf.put()
		e, y := buf.f[:n*c.win], buf.f[n*c.win:]
		var u, cm mat.Dense
		u.SetRawMatrix(blas64.General{Rows: n, Cols: c.dim, Stride: c.dim, Data: src[:n*c.dim]})
		cp := &cm
		if c.cdim > 0 {
			cm.SetRawMatrix(blas64.General{Rows: n, Cols: c.cdim, Stride: c.cdim, Data: ctx[:n*c.cdim]})
		} else {
			cp = nil
		}
		c.embed(e, &u, cp)
		net(e, n, y)
		if S > 0 {
			c.affineRows(S, src, y, dst, ld, n, inverse)
			return
		}
		c.transformRows(src, c.dim, y, c.wy, dst, ld, 0, n, inverse)
	}
}

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

// affineRows is transformRows for Affine(S) on every column, written out
// (no call through the transformer's functions, no gather): the same
// arithmetic, so the same bits. Column j's raw log-scale and shift are
// y[j] and y[d2+j] of its row, non-finite values replaced as gatherAt
// replaces them.
func (c *coupling) affineRows(S float64, u, y, out, logDet []float64, n int, inverse bool) {
	d1, d2, dim, wy := c.d1, c.d2, c.dim, c.wy
	for i := range n {
		urow := u[i*dim : (i+1)*dim]
		yrow := y[i*wy : (i+1)*wy]
		orow := out[i*dim : (i+1)*dim]
		copy(orow[:d1], urow[:d1])
		var sum float64
		for j, v := range urow[d1:] {
			raw, _ := finiteParam(yrow[j])
			t, _ := finiteParam(yrow[d2+j])
			s := S * math.Tanh(raw/S)
			if inverse {
				orow[d1+j] = (v - t) * math.Exp(-s)
				sum += -s
			} else {
				orow[d1+j] = v*math.Exp(s) + t
				sum += s
			}
		}
		logDet[i] = sum
	}
}
