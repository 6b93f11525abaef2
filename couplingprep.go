package flows

// A coupling layer at fixed parameters (see prepare.go): its conditioner
// prepared (a net with a prepare hook: MLP), and row maps that embed a
// block's rows, run the net and the transformers on them on the calling
// goroutine, into pooled buffers.

import (
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
		c.transformRows(src, c.dim, y, c.wy, dst, ld, 0, n, inverse)
	}
}
