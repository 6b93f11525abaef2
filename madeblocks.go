package flows

// MADE with sorted hidden degrees (SortedDegrees), and the products that
// skip its masks' zero blocks.
//
// With the cyclic recipe every group of hidden units holds every degree,
// so a masked product multiplies all its zeros: the hidden→hidden product
// of a MADE on dim inputs does about 2(dim−1)/dim times the useful
// multiply-adds (a weight from degree a into degree b is used when a ≤ b).
// SortedDegrees gives hidden unit k of a layer of width h the k-th smallest
// of the cyclic recipe's degrees {1 + (i mod (dim−1)) : i < h}: the same
// degrees, hence the same family of nets up to a relabelling of the hidden
// units, with the same initial weight distribution (every weight is still
// drawn i.i.d. from the same stream, masked or not). Then, with the inputs
// in the natural order, the masks are block-triangular: an output column
// uses a prefix of its layer's inputs, and an input feeds a suffix of the
// outputs.
//
// When every hidden layer is at least madeSkipMinWidth (128) wide, the
// dense pass then computes each product on the used part alone
// (linalg.GemmExt): per group of linalg.ExtentCols columns, x·Wm runs over
// the k steps up to the group's last used input, dy·Wmᵀ over the outputs
// from the group's first user, and the weight gradient xᵀ·g over the rows
// up to the group's last used input (the rest of the gradient is masked
// out, exactly zero, as before). Each product's bits are those of the full
// masked product (the steps left out multiply exact zeros of Wm), up to the
// sign of a zero, where the activations are finite (an Inf activation
// times a masked zero makes the full product NaN, not this one; see
// internal/linalg/extents.go); they are the same on every kernel and
// GOMAXPROCS, and the prepared pass's are the unprepared pass's.

import (
	"fmt"
	"slices"

	"github.com/gonormflows/flows/internal/linalg"
)

// Degrees is how a MADE gives its hidden units their degrees (see MADE).
type Degrees int

const (
	// CyclicDegrees gives hidden unit k the degree 1 + (k mod (dim−1)),
	// the recipe of Germain et al.
	CyclicDegrees Degrees = iota
	// SortedDegrees gives the hidden units the cyclic recipe's degrees
	// sorted in increasing order: the same nets up to a relabelling of
	// the hidden units, whose masked products skip their zero blocks
	// when every hidden layer is at least 128 wide (in groups of 32
	// columns: a hidden→hidden product at dim 8 does
	// 68% of the full product's multiply-adds at width 128, 60% at 512,
	// where 57% are used; see madeblocks.go). Parameters are not
	// interchangeable with CyclicDegrees': the units are in another
	// order.
	SortedDegrees
)

// String returns the degrees' name, as in the Go constant.
func (d Degrees) String() string {
	switch d {
	case CyclicDegrees:
		return "CyclicDegrees"
	case SortedDegrees:
		return "SortedDegrees"
	}
	return fmt.Sprintf("Degrees(%d)", int(d))
}

// valid reports whether d is one of the declared recipes.
func (d Degrees) valid() bool { return d == CyclicDegrees || d == SortedDegrees }

// hiddenDegrees returns the degrees of a hidden layer of width h of a MADE
// on dim inputs, by recipe d.
func (d Degrees) hiddenDegrees(h, dim int) []int {
	cycle := max(dim-1, 1)
	deg := make([]int, h)
	for k := range deg {
		deg[k] = 1 + k%cycle
	}
	if d == SortedDegrees {
		slices.Sort(deg)
	}
	return deg
}

// madeExtents is the used part of one masked layer's products (see
// linalg.Extents): fwd for x·Wm (groups of outputs), back for dy·Wmᵀ
// (groups of inputs), grad for xᵀ·dy (groups of outputs).
type madeExtents struct {
	fwd, back, grad linalg.Extents
}

// madeSkipMinWidth is the narrowest hidden layer with which a MADE with
// sorted degrees skips the unused blocks of its products. Below it, a
// product is only a few groups of linalg.ExtentCols columns wide:
// skipping saves little (a fifth of a hidden→hidden product at width 64
// and dim 8), and a kernel tile that spans two groups runs once for each,
// so that a call of a few rows got slower (BenchmarkScore: 5.7 → 8.1 µs
// for one row, 33.6 → 41.8 for 16, measured under load).
const madeSkipMinWidth = 4 * linalg.ExtentCols

// skipPays reports whether a MADE of cfg with sorted degrees skips the
// unused blocks of its products: in all of them when every hidden layer
// is at least madeSkipMinWidth wide, in none otherwise, by the shape
// alone, so that its bits do not depend on anything else.
func skipPays(cfg MADEConfig) bool {
	return cfg.skipAlways || len(cfg.Hidden) > 0 && slices.Min(cfg.Hidden) >= madeSkipMinWidth
}

// allRows stands for "every row of the batch" in an Extents.
const allRows = int(^uint(0) >> 1)

// newMADEExtents derives the used part of the products of a layer of in
// inputs and out outputs from its mask (in×out, row-major).
func newMADEExtents(mask []bool, in, out int) *madeExtents {
	e := &madeExtents{}
	// Per output column: one past its last used input; per input: its
	// first and one past its last used output (0, 0 when it feeds none).
	lastIn := make([]int, out)
	firstOut, lastOut := make([]int, in), make([]int, in)
	for a := range in {
		firstOut[a] = out
		for b := range out {
			if mask[a*out+b] {
				lastIn[b] = a + 1
				firstOut[a] = min(firstOut[a], b)
				lastOut[a] = b + 1
			}
		}
		if lastOut[a] == 0 {
			firstOut[a] = 0
		}
	}
	for c0 := 0; c0 < out; c0 += linalg.ExtentCols {
		hi := slices.Max(lastIn[c0:min(c0+linalg.ExtentCols, out)])
		e.fwd.KLo, e.fwd.KHi, e.fwd.Rows = append(e.fwd.KLo, 0), append(e.fwd.KHi, hi), append(e.fwd.Rows, allRows)
		e.grad.KLo, e.grad.KHi, e.grad.Rows = append(e.grad.KLo, 0), append(e.grad.KHi, allRows), append(e.grad.Rows, hi)
	}
	for c0 := 0; c0 < in; c0 += linalg.ExtentCols {
		c1 := min(c0+linalg.ExtentCols, in)
		lo, hi := out, 0
		for a := c0; a < c1; a++ {
			if lastOut[a] > 0 {
				lo, hi = min(lo, firstOut[a]), max(hi, lastOut[a])
			}
		}
		if hi == 0 {
			lo = 0
		}
		e.back.KLo, e.back.KHi, e.back.Rows = append(e.back.KLo, lo), append(e.back.KHi, hi), append(e.back.Rows, allRows)
	}
	return e
}

// extMul is Precision.mul (alpha 1) on the used part e of the product
// (linalg.GemmExt, GemmExtF32Of).
func extMul(pr Precision, serial, ta, tb bool, m, n, k int, a, b acts, beta float64, c []float64, e *linalg.Extents) {
	switch {
	case pr != Float32:
		linalg.GemmExt(serial, ta, tb, m, n, k, a.f64, b.f64, beta, c, e)
	case a.is32 && b.is32:
		linalg.GemmExtF32Of(serial, ta, tb, m, n, k, a.f32, b.f32, beta, c, e)
	case a.is32:
		linalg.GemmExtF32Of(serial, ta, tb, m, n, k, a.f32, b.f64, beta, c, e)
	case b.is32:
		linalg.GemmExtF32Of(serial, ta, tb, m, n, k, a.f64, b.f32, beta, c, e)
	default:
		linalg.GemmExtF32Of(serial, ta, tb, m, n, k, a.f64, b.f64, beta, c, e)
	}
}

// mulW sets c = x·Wm + beta·c (x n×li.in), on the used part when the
// layer has extents.
func (li madeLayer) mulW(pr Precision, serial bool, x acts, w []float64, n int, beta float64, c []float64) {
	if li.ext == nil {
		pr.mul(serial, false, false, n, li.out, li.in, 1, x, f64(w), beta, c)
		return
	}
	extMul(pr, serial, false, false, n, li.out, li.in, x, f64(w), beta, c, &li.ext.fwd)
}

// gradW sets s (li.in×li.out) to xᵀ·g, where the mask uses it at least
// (the rest of s, masked out, is left as it was when the layer has
// extents).
func (li madeLayer) gradW(pr Precision, x, g acts, n int, s []float64) {
	if li.ext == nil {
		pr.mul(false, true, false, li.in, li.out, n, 1, x, g, 0, s)
		return
	}
	extMul(pr, false, true, false, li.in, li.out, n, x, g, 0, s, &li.ext.grad)
}

// backIn sets dh (n×li.in) to g·Wmᵀ on the used part (the layer has
// extents) and puts gBuf.
func (li madeLayer) backIn(pr Precision, g acts, gBuf *scratch, w []float64, n int, dh []float64) {
	extMul(pr, false, false, true, n, li.in, li.out, g, f64(w), 0, dh[:n*li.in], &li.ext.back)
	gBuf.put()
}

// backLayer is backward's step below layer l: dL/dx (n×in, new) for the
// first layer, else the gradient of the layer below's pre-activation (its
// pooled buffer returned too), as backInput and backHidden compute them,
// on the used part of the product when the layer has extents.
func (m *madeNet) backLayer(l int, t *madeTape, g acts, gBuf *scratch, w []float64) (acts, *scratch) {
	li, n := m.layers[l], t.n
	switch {
	case li.ext == nil && l == 0:
		return f64(backInput(m.prec, g, gBuf, w, n, li.in, li.out)), nil
	case li.ext == nil:
		return backHidden(m.prec, m.act, g, gBuf, w, t.hidden[l], t.pres[l-1], n, li.in, li.out)
	case l == 0:
		dx := make([]float64, n*li.in)
		li.backIn(m.prec, g, gBuf, w, n, dx)
		return f64(dx), nil
	}
	dh := getScratch(n * li.in)
	li.backIn(m.prec, g, gBuf, w, n, dh.f)
	return backActs(m.prec, m.act, dh, t.hidden[l], t.pres[l-1], n, li.in)
}
