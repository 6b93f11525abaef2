package flows

// A conditioner net at fixed parameters (see prepare.go): the weights of
// each layer packed once for the products of small row blocks
// (linalg.Packed), and a row map that runs the net on a block of rows on
// the calling goroutine, its hidden layers in pooled buffers, allocating
// nothing.

import (
	"slices"

	"github.com/gonormflows/flows/internal/linalg"
)

// preparedNet maps n rows of x (n×in, row-major) to y (n×out, row-major)
// on the calling goroutine, with the bits of the net's Apply at the
// parameters it was prepared with. It is safe for concurrent use.
type preparedNet func(x []float64, n int, y []float64)

// prepare returns the MLP at p (copied) as a row map: each layer's
// weights packed once, in float64 (linalg.Packed) or, with Float32, rounded
// to float32 (linalg.Packed32, see net32), with Apply's bits either way.
func (m *mlp) prepare(p Params, prec Precision) preparedNet {
	checkParams("MLP", p, m.np)
	q := slices.Clone(p)
	if prec == Float32 {
		ls := make([]layer32, len(m.layers))
		for l, li := range m.layers {
			ls[l] = layer32{w: linalg.PackB32(li.in, li.out, q[li.w:li.b]), b: q[li.b : li.b+li.out]}
		}
		nt := newNet32(ls, m.act)
		return func(x []float64, n int, y []float64) { nt.forward(x, nil, n, y) }
	}
	w := make([]*linalg.Packed, len(m.layers))
	for l, li := range m.layers {
		w[l] = linalg.PackB(li.in, li.out, q[li.w:li.b])
	}
	outs := make([]int, len(m.layers))
	for l, li := range m.layers {
		outs[l] = li.out
	}
	return func(x []float64, n int, y []float64) {
		runLayers(outs, m.maxHidden, x, n, y, func(l int, h, c []float64, hidden bool) {
			li := m.layers[l]
			packedLayer(w[l], q[li.b:li.b+li.out], h, n, c, m.act, hidden)
		})
	}
}

// runLayers runs a net whose layer l has outs[l] outputs on n rows of x
// (n×in): layer(l, h, c, hidden) sets c (n×outs[l]) from h, the previous
// layer's output; the hidden layers' outputs go to two pooled buffers of
// n×maxHidden, used in turn, and the last layer's to y (n×outs[last]).
func runLayers(outs []int, maxHidden int, x []float64, n int, y []float64, layer func(l int, h, c []float64, hidden bool)) {
	last := len(outs) - 1
	h := x
	if last > 0 {
		buf := getScratch(2 * n * maxHidden)
		defer buf.put()
		for l, out := range outs[:last] {
			c := buf.f[(l%2)*n*maxHidden:][:n*out]
			layer(l, h, c, true)
			h = c
		}
	}
	layer(last, h, y[:n*outs[last]], false)
}

// packedLayer sets c (n×len(b)) to x·W + b, W packed in w, as affine does
// (c = b, then the product added), and then, when hidden, applies act: the
// same bits. With one k-block the product is computed alone and the bias
// added in the activation's pass (see linalg.Packed.Mul).
func packedLayer(w *linalg.Packed, b, x []float64, n int, c []float64, act Activation, hidden bool) {
	if !w.OneBlock() {
		fillBias(c, b, n)
		w.MulAdd(n, x, c)
		if hidden {
			act.apply(c, c)
		}
		return
	}
	w.Mul(n, x, c)
	biasAct(c, b, n, act, hidden)
}

// fillBias copies b into each of the n rows of c (n×len(b)).
func fillBias(c, b []float64, n int) {
	w := len(b)
	for i := range n {
		copy(c[i*w:(i+1)*w], b)
	}
}
