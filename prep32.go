package flows

// A conditioner net in Float32 at fixed parameters (see prepare.go and
// Precision): each layer's weights, and a MADE's context weights, rounded
// to float32 and packed once in the kernel's panels (linalg.Packed32), and
// a row map that runs the net on a block of rows on the calling goroutine,
// its hidden layers stored in float32 in pooled buffers, allocating
// nothing.
//
// Bits: the same as the unprepared Float32 pass (mlp.forward,
// madeNet.forwardWith), for every row, on any kernel and GOMAXPROCS
// (TestPreparedNets compares them bit for bit). The unprepared pass sets
// c = b, adds the product's float32 sum of each k-block into c in float64
// (c = fma(1, acc, c)), adds a MADE's context product likewise, and stores
// act(c) rounded to float32; the prepared one does exactly that, except
// that a hidden layer of one k-block without context weights gets each
// tile of its product from the kernel (c = acc) and adds the bias and
// applies the activation while the tile is in cache: acc + b is
// fma(1, acc, b), the same number. With ReLU that is
// linalg.MulBiasReLU32, whose AVX-512 kernels do it in their update, and
// for a layer of several k-blocks linalg.MulAddReLU32 (the last block's
// sum added to c and the ReLU applied in the kernel's update); the
// products read a float32 hidden layer in place (no packing pass).

import "github.com/gonormflows/flows/internal/linalg"

// net32 is a Float32 net at fixed parameters: its layers, the activation
// after every layer but the last, and the widest hidden layer.
type net32 struct {
	layers    []layer32
	act       Activation
	maxHidden int
	needC     bool // some hidden layer is not fused (see layer32.fused): it needs a float64 buffer
}

// layer32 is one layer of a net32: its weights w (in×out) and context
// weights wc (cdim×out, nil where the layer has none), packed, and its
// bias b (a view of the prepared copy of the parameters).
type layer32 struct {
	w, wc *linalg.Packed32
	b     []float64
}

// out returns the layer's width.
func (l *layer32) out() int { return len(l.b) }

// fused reports whether the layer, when hidden, adds its bias and applies
// the activation tile by tile (linalg.MulTiles32): one k-block, no context
// product.
func (l *layer32) fused() bool { return l.w.OneBlock() && l.wc == nil }

// newNet32 returns the net32 of the given layers and activation, its
// needC and maxHidden set.
func newNet32(layers []layer32, act Activation) *net32 {
	nt := &net32{layers: layers, act: act}
	for i := range layers[:len(layers)-1] {
		nt.maxHidden = max(nt.maxHidden, layers[i].out())
		nt.needC = nt.needC || !layers[i].fused()
	}
	return nt
}

// forward sets y (n×out, row-major) to the net's output on x (n×in) and
// ctx (n×cdim, or nil when no layer has context weights), on the calling
// goroutine.
func (nt *net32) forward(x, ctx []float64, n int, y []float64) {
	last := len(nt.layers) - 1
	if last == 0 {
		output32(&nt.layers[0], x, ctx, n, y)
		return
	}
	size := n * nt.maxHidden
	words := Float32.words(size)
	cw := 0
	if nt.needC {
		cw = size
	}
	buf := getScratch(2*words + cw)
	defer buf.put()
	hs := [2][]float32{Float32.view(buf.f[:words], size).f32, Float32.view(buf.f[words:2*words], size).f32}
	c := buf.f[2*words:]
	var h []float32
	for l := range nt.layers[:last] {
		li := &nt.layers[l]
		post := hs[l%2][:n*li.out()]
		if l == 0 {
			hidden32(li, nt.act, x, ctx, n, post, c)
		} else {
			hidden32(li, nt.act, h, ctx, n, post, c)
		}
		h = post
	}
	output32(&nt.layers[last], h, ctx, n, y)
}

// hidden32 sets post (n×out) to the activation of the layer on x (n×in)
// and ctx, rounded to float32; c is a float64 buffer of n×out at least
// for a layer that is not fused.
func hidden32[A linalg.Float](li *layer32, act Activation, x []A, ctx []float64, n int, post []float32, c []float64) {
	out, b := li.out(), li.b
	if li.fused() && act == ReLU { // biasAct32's bits (linalg.MulBiasReLU32)
		linalg.MulBiasReLU32(li.w, n, x, b, post)
		return
	}
	if li.fused() {
		linalg.MulTiles32(li.w, n, x, func(i, j, rows, cols int, t []float64, ldt int) {
			bj := b[j : j+cols]
			for r := range rows {
				biasAct32(act, post[(i+r)*out+j:][:cols], t[r*ldt:r*ldt+cols], bj)
			}
		})
		return
	}
	c = c[:n*out]
	fillBias(c, b, n)
	if li.wc == nil && act == ReLU { // the products' c, then applyAct's ReLU: the same bits
		linalg.MulAddReLU32(li.w, n, x, c, post)
		return
	}
	linalg.MulAdd32(li.w, n, x, c)
	if li.wc != nil {
		linalg.MulAdd32(li.wc, n, ctx, c)
	}
	applyAct(act, post, c)
}

// output32 sets y (n×out) to the layer's affine map of x (n×in) and ctx: y =
// b, then the products added (a fused layer: each tile of the product plus
// b).
func output32[A linalg.Float](li *layer32, x []A, ctx []float64, n int, y []float64) {
	out, b := li.out(), li.b
	y = y[:n*out]
	if li.fused() { // acc + b, fma(1, acc, b): the same number
		linalg.MulTiles32(li.w, n, x, func(i, j, rows, cols int, t []float64, ldt int) {
			bj := b[j : j+cols]
			for r := range rows {
				dst := y[(i+r)*out+j:][:cols]
				for c, v := range t[r*ldt : r*ldt+cols] {
					dst[c] = v + bj[c]
				}
			}
		})
		return
	}
	fillBias(y, b, n)
	linalg.MulAdd32(li.w, n, x, y)
	if li.wc != nil {
		linalg.MulAdd32(li.wc, n, ctx, y)
	}
}

// biasAct32 sets dst to act(src + b), rounded to float32; it may
// overwrite src.
func biasAct32(act Activation, dst []float32, src, b []float64) {
	src, b = src[:len(dst)], b[:len(dst)]
	if act == ReLU { // applyAct's float32(max(v, 0)), on v = src + b
		linalg.BiasReLU32(dst, src, b)
		return
	}
	for j, v := range src {
		src[j] = v + b[j]
	}
	applyAct(act, dst, src)
}
