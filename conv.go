package flows

// Two-dimensional convolution on channel-major image rows, as products on
// our matrix kernel (im2col).
//
// A k×k convolution (k odd, zero padding k/2, stride 1, so the output has
// the input's height and width) from cin to cout channels with weights
// W (cout × cin·k·k, row o holding output channel o's filter in the order
// (input channel, ky, kx)) and bias b maps one image X (cin × H·W) to
//
//	Y = W·col(X) + b·1ᵀ      (cout × H·W)
//
// where col(X) is the cin·k·k × H·W matrix whose row (ci, ky, kx) holds the
// input channel ci shifted by (ky − k/2, kx − k/2), zero outside the image
// (im2col). The backward passes are the two other products:
//
//	dW += Σ_images dY·col(X)ᵀ,   db += Σ_images Σ_pixels dY,   dX = col⁻¹(Wᵀ·dY)
//
// with col⁻¹ adding each shifted row back where it came from (col2im), or,
// when cout ≤ cin, the same gradients from col(dY) with the filters
// flipped (see flipped and byDY): dX = W'·col(dY), dW from col(dY)·Xᵀ, so
// the pass copies cout·k·k rows a pixel rather than 2·cin·k·k. Each
// product's rows are whole channels of the task's images side by side, so
// the layout needs no transposes: channel-major in, channel-major out, the
// images' planes gathered and scattered by copies.
//
// Work is split by images: a task is a run of consecutive images, as many
// as make about convTaskCols pixels (columns of col(X)) in all, the runs as
// even as whole images allow; the split depends on the shapes and the
// number of images alone. A task lays its images' col(X) side by side in one
// cin·k·k × images·H·W buffer, so each pass is one product per task (the
// filters packed once per task, not once per image) on the
// single-goroutine kernel; the tasks run on the kernel's helper pool
// (linalg.Parallel). Per-image outputs are products over cin·k·k, so they
// do not depend on the split (the kernel's results do not depend on the
// other columns of a product); dW and db, sums over images, are computed
// per task and the tasks' partial sums are added in task order. So results
// are bit-identical on any number of workers. Im2col rather than a direct
// kernel: the products then run on the packed, register-blocked kernel,
// and col(X) costs k² times the input's memory only for the images of
// tasks in flight (a training pass keeps X, never col(X)).
//
// In Float32 the forward pass, and the backward pass through col(dY), do
// not write col(X) or col(dY) at all: conv32.go's products read their rows
// in place from a padded float32 copy of the images, with the same bits.

import (
	"sync"

	"github.com/gonormflows/flows/internal/linalg"
)

// convTaskCols is about how many pixels (columns of col(X)) one task of
// a convolution takes: products of that width run at the kernel's full
// speed and outweigh the filters' packing, and 64 MNIST-sized images make a
// few tasks per core.
const convTaskCols = 1024

// convTaskFloats bounds a task's col(X) buffer (in floats, 16 MiB) for
// images with many channels.
const convTaskFloats = 1 << 21

// convProduct is the one product every convolution pass calls: c =
// op(a)·op(b) + beta·c on the calling goroutine (the passes run tasks in
// parallel themselves). Float32 operands (the Float32 mode's, see
// Precision) make a float32 product: linalg.GemmSerialF32Of on operands
// already rounded to float32 gives the bits GemmF32 would on the float64
// ones, with half the bytes to copy and pack and no conversion while
// packing. Float64 operands make the float64 product.
func convProduct[E linalg.Float](ta, tb bool, m, n, k int, a, b []E, beta float64, c []float64) {
	switch a := any(a).(type) {
	case []float32:
		linalg.GemmSerialF32Of(ta, tb, m, n, k, 1, a, any(b).([]float32), beta, c)
	case []float64:
		linalg.GemmSerial(ta, tb, m, n, k, 1, a, any(b).([]float64), beta, c)
	}
}

// colPool and col32Pool keep the tasks' buffers (col(X), the gathered
// inputs and outputs) between tasks, in float64 and float32: allocating
// (and zeroing) them each time cost more than the copies. Every use
// overwrites the whole buffer first.
var colPool, col32Pool sync.Pool

// poolOf returns the pool of E's buffers.
func poolOf[E linalg.Float]() *sync.Pool {
	var z E
	if _, ok := any(z).(float32); ok {
		return &col32Pool
	}
	return &colPool
}

// getBuf returns a buffer of n elements from E's pool (contents
// arbitrary).
func getBuf[E linalg.Float](n int) *[]E {
	if p, ok := poolOf[E]().Get().(*[]E); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	buf := make([]E, n)
	return &buf
}

// putBuf returns a buffer of getBuf's (or nil: nothing) to its pool.
func putBuf[E linalg.Float](p *[]E) {
	if p != nil {
		poolOf[E]().Put(p)
	}
}

// getCol returns a float64 buffer of n floats (contents arbitrary).
func getCol(n int) *[]float64 { return getBuf[float64](n) }

// rowsAs returns src as E's: src itself for float64 (and a nil buffer),
// else a pooled buffer holding src rounded to float32, to be given back
// with putBuf. Rounding a pass's inputs once, before im2col copies each
// k² times, is what lets the copies and the packing move float32.
func rowsAs[E linalg.Float](src []float64) ([]E, *[]E) {
	if s, ok := any(src).([]E); ok {
		return s, nil
	}
	p := getBuf[E](len(src))
	linalg.ToF32(any(*p).([]float32), src)
	return *p, p
}

// elemsOf returns the filters wt as the products' operands of c's
// precision: wt itself, or rounded to float32.
func elemsOf[E linalg.Float](wt []float64) []E {
	if s, ok := any(wt).([]E); ok {
		return s
	}
	f := make([]float32, len(wt))
	linalg.ToF32(f, wt)
	return any(f).([]E)
}

// conv2d is the shape of a k×k convolution of h×w images from cin to cout
// channels (see the file comment).
type conv2d struct {
	cin, cout, k, h, w int
	prec               Precision // of the products
}

// weights returns the number of filter weights, cout·cin·k·k.
func (c conv2d) weights() int { return c.cout * c.cin * c.k * c.k }

// inWidth and outWidth return the row widths of input and output images.
func (c conv2d) inWidth() int  { return c.cin * c.h * c.w }
func (c conv2d) outWidth() int { return c.cout * c.h * c.w }

// tasks returns how many images each task of n images takes (the last
// one may take fewer) and how many tasks they make. In Float32 the tasks
// are rounded up to a multiple of 4 (at most n), so that 2 or 4 cores
// share them evenly: 13 tasks of 5 images at 14×14 kept one of two cores
// idle for a twelfth of each pass; 16 of 4 do not. (The split sets the
// order of the weight gradient's partial sums, so it depends on n and the
// shapes only, never on the cores; Float64 keeps its split and its bits.)
func (c conv2d) tasks(n int) (per, tasks int) {
	hw := c.h * c.w
	most := max(1, min(convTaskCols/hw, convTaskFloats/max(1, c.cin*c.k*c.k*hw)))
	tasks = (n + most - 1) / most
	if tasks == 0 {
		return 1, 0
	}
	if c.prec == Float32 && tasks > 1 {
		tasks = min(n, (tasks+3)/4*4)
	}
	per = (n + tasks - 1) / tasks
	return per, (n + per - 1) / per
}

// span returns the images [i0, i1) of task t of n images taking per each.
func span(t, per, n int) (i0, i1 int) { return t * per, min(n, (t+1)*per) }

// im2col writes col(X) of one image x (cin × h·w) into the rows of col
// (cin·k·k rows of h·w values, row r at col[r·ld:]). Row (ci, ky, kx) of
// col is the plane ci shifted by dy·w + dx in the row-major pixel order, so
// the rows y whose source row y + dy is inside take one copy of a
// contiguous span; the entries that span carries across a row's edge (the
// |dx| columns at the side the shift leaves) and the rows outside are then
// cleared. One copy per row of col rather than one per image row: at 14×14
// the per-row copies were most of the time outside the products.
func (c conv2d) im2col(x, col []float64, ld int) { im2colOf(c, x, col, ld) }

// im2colOf is im2col on either element type (float32 in the Float32
// mode: inputs rounded once, then copied).
func im2colOf[E linalg.Float](c conv2d, x, col []E, ld int) {
	hw, pad, w := c.h*c.w, c.k/2, c.w
	r := 0
	for ci := 0; ci < c.cin; ci++ {
		plane := x[ci*hw : (ci+1)*hw]
		for ky := 0; ky < c.k; ky++ {
			dy := ky - pad
			y0, y1 := max(0, -dy), min(c.h, c.h-dy)
			for kx := 0; kx < c.k; kx++ {
				dst := col[r*ld : r*ld+hw]
				r++
				dx := kx - pad
				x0, x1 := max(0, -dx), min(w, w-dx)
				if y0 >= y1 || x0 >= x1 {
					clear(dst)
					continue
				}
				lo, hi, off := y0*w, y1*w, dy*w+dx
				a, b := max(lo, -off), min(hi, hw-off)
				clear(dst[:a])
				copy(dst[a:b], plane[a+off:b+off])
				clear(dst[b:])
				if x0 > 0 || x1 < w {
					clearEdges(dst, w, x0, x1, y0, y1)
				}
			}
		}
	}
}

// clearEdges zeroes the columns outside [x0, x1) of the rows [y0, y1) of
// the w-wide plane p.
func clearEdges[E linalg.Float](p []E, w, x0, x1, y0, y1 int) {
	// Element by element: the edges are a column or two, and clear's call
	// per row cost more than the copies.
	for y := y0; y < y1; y++ {
		row := p[y*w : (y+1)*w]
		for x := range x0 {
			row[x] = 0
		}
		for x := x1; x < w; x++ {
			row[x] = 0
		}
	}
}

// col2im adds the rows of col (cin·k·k rows of h·w values, row r at
// col[r·ld:]) back into the image dx (cin × h·w) where im2col took them
// from. Like im2col, by spans: each row's entries that belong to no pixel
// (those a shift carries across the image's edge) are first set to zero in
// col, which is scratch, so one contiguous add per row of col adds exactly
// the values the pixels get, and zeros elsewhere. Adding +0 leaves every
// sum's bits as they were (dx starts at +0, and a sum of rounded-to-nearest
// additions from +0 is never −0), so the result is bit for bit that of
// adding pixel by pixel, in the same order.
func (c conv2d) col2im(col []float64, ld int, dx []float64) {
	hw, pad, w := c.h*c.w, c.k/2, c.w
	r := 0
	for ci := 0; ci < c.cin; ci++ {
		plane := dx[ci*hw : (ci+1)*hw]
		for ky := 0; ky < c.k; ky++ {
			dy := ky - pad
			y0, y1 := max(0, -dy), min(c.h, c.h-dy)
			for kx := 0; kx < c.k; kx++ {
				src := col[r*ld : r*ld+hw]
				r++
				dxo := kx - pad
				x0, x1 := max(0, -dxo), min(w, w-dxo)
				if y0 >= y1 || x0 >= x1 {
					continue
				}
				if x0 > 0 || x1 < w {
					clearEdges(src, w, x0, x1, y0, y1)
				}
				off := dy*w + dxo
				a, b := max(y0*w, -off), min(y1*w, hw-off)
				d := plane[a+off : b+off]
				for j, v := range src[a:b] {
					d[j] += v
				}
			}
		}
	}
}

// forward returns Y for the n images x (n × cin·h·w): n × cout·h·w.
func (c conv2d) forward(wt, b, x []float64, n int) []float64 {
	return c.forwardAct(wt, b, x, n, false)
}

// forwardAct is forward of the images max(x, 0) when act (a ReLU before
// the conv): the Float32 passes apply it while they copy x, the others on
// a copy of x.
func (c conv2d) forwardAct(wt, b, x []float64, n int, act bool) []float64 {
	if c.prec == Float32 && !convIm2col32 {
		return c.forward32(wt, b, x, n, act)
	}
	if act {
		x = relu(x)
	}
	switch {
	case c.prec == Float32:
		return forwardOf(c, elemsOf[float32](wt), b, x, n)
	}
	return forwardOf(c, wt, b, x, n)
}

// forwardOf is forward with the filters (and so the products' operands)
// in E.
func forwardOf[E linalg.Float](c conv2d, wt []E, b, x []float64, n int) []float64 {
	hw, kk := c.h*c.w, c.cin*c.k*c.k
	y := make([]float64, n*c.outWidth())
	per, tasks := c.tasks(n)
	linalg.Parallel(tasks, func(t int) {
		i0, i1 := span(t, per, n)
		cols := (i1 - i0) * hw
		xs, xb := rowsAs[E](x[i0*c.inWidth() : i1*c.inWidth()])
		cb, yb := getBuf[E](kk*cols), getCol(c.cout*cols)
		col, yt := *cb, *yb
		for i := range i1 - i0 {
			im2colOf(c, xs[i*c.inWidth():(i+1)*c.inWidth()], col[i*hw:], cols)
		}
		putBuf(xb)
		for o, bo := range b {
			row := yt[o*cols : (o+1)*cols]
			for q := range row {
				row[q] = bo
			}
		}
		convProduct(false, false, c.cout, cols, kk, wt, col, 1, yt)
		putBuf(cb)
		c.scatter(yt, c.cout, i0, i1, y)
		putBuf(yb)
	})
	return y
}

// byDY reports whether backward works on col(dY), the im2col of the
// output gradient, rather than col(X): true when cout ≤ cin (a
// conditioner's 32→32 and 32→4 convs), false for a widening conv (2→32).
// Both ways make the same two products (dW and dX, cin·cout·k²
// multiply-adds a pixel each); they differ in the copies around them, which
// cost more than the products at these sizes. On col(X) (cin·k² rows a
// pixel), dX is col2im of a cin·k²-row product; on col(dY) (cout·k² rows),
// dX is a convolution of dY, a cin-row product. The choice depends on the
// shape alone.
func (c conv2d) byDY() bool { return c.cout <= c.cin }

// flipped returns the filters of dX as a convolution of dY: a k×k
// convolution from cout to cin channels with weights W'[ci, o, ky, kx] =
// W[o, ci, k−1−ky, k−1−kx] (cin × cout·k·k), since dX[ci, q] =
// Σ_{o,ky,kx} W[o, ci, ky, kx]·dY[o, q − (ky−k/2, kx−k/2)] with dY zero
// outside the image. Row (o, k−1−ky, k−1−kx) of col(dY) is so dY shifted by
// −(ky−k/2, kx−k/2), which also gives dW[o, ci, ky, kx] = Σ_q
// col(dY)[(o, k−1−ky, k−1−kx), q]·X[ci, q].
func (c conv2d) flipped(wt []float64) []float64 {
	kk := c.k * c.k
	f := make([]float64, len(wt))
	for o := range c.cout {
		for ci := range c.cin {
			src := wt[(o*c.cin+ci)*kk : (o*c.cin+ci+1)*kk]
			dst := f[(ci*c.cout+o)*kk : (ci*c.cout+o+1)*kk]
			for j, v := range src {
				dst[kk-1-j] = v
			}
		}
	}
	return f
}

// backward adds the weight and bias gradients of the n images x given
// dY (n × cout·h·w) into dw and db, and returns dX (n × cin·h·w) when
// wantDx, else nil.
func (c conv2d) backward(wt, x, dy []float64, n int, dw, db []float64, wantDx bool) []float64 {
	return c.backwardAct(wt, x, dy, n, dw, db, wantDx, false, false)
}

// backwardAct is backward for the input max(x, 0) when act, as
// forwardAct: the gradients are the conv's, not through the ReLU, unless
// maskDx: then dX is zero where x ≤ 0 (reluBack, applied while a task's dX
// is in cache).
func (c conv2d) backwardAct(wt, x, dy []float64, n int, dw, db []float64, wantDx, act, maskDx bool) []float64 {
	if act && (c.prec != Float32 || !c.byDY() || convIm2col32) {
		x, act = relu(x), false // only backwardDY32 applies it itself
	}
	if c.prec == Float32 {
		return backwardOf[float32](c, wt, x, dy, n, dw, db, wantDx, act, maskDx)
	}
	return backwardOf[float64](c, wt, x, dy, n, dw, db, wantDx, act, maskDx)
}

// backwardOf is backwardAct with the products' operands in E; act (a ReLU
// on x) is for backwardDY32 alone.
func backwardOf[E linalg.Float](c conv2d, wt, x, dy []float64, n int, dw, db []float64, wantDx, act, maskDx bool) []float64 {
	var dx []float64
	if wantDx {
		dx = make([]float64, n*c.inWidth())
	}
	byDY := c.byDY()
	var z E
	_, is32 := any(z).(float32)
	gathered := byDY && is32 && !convIm2col32 // through col(dY) in conv32.go
	var we []E                                // the filters of the dX product: flipped for byDY
	var wfT []float32                         // the flipped filters transposed, for gathered
	switch {
	case gathered && wantDx:
		wfT = c.flippedT(wt)
	case byDY && wantDx && !gathered:
		we = elemsOf[E](c.flipped(wt))
	case !byDY:
		we = elemsOf[E](wt)
	}
	per, tasks := c.tasks(n)
	wlen := len(dw) // a task's partial weight gradient: dw's layout, or g's (gLen) for gathered
	var partW []float64
	if gathered { // every task writes its partial whole: a pooled buffer
		wlen = c.gLen()
		pw := getCol(tasks * wlen)
		defer putBuf(pw)
		partW = *pw
	} else {
		partW = make([]float64, tasks*wlen)
	}
	partB := make([]float64, tasks*len(db))
	linalg.Parallel(tasks, func(t int) {
		i0, i1 := span(t, per, n)
		pw, pb := partW[t*wlen:(t+1)*wlen], partB[t*len(db):(t+1)*len(db)]
		hw := c.h * c.w
		for i := i0; i < i1; i++ {
			sumPlanes(pb, dy[i*c.outWidth():(i+1)*c.outWidth()], hw)
		}
		switch {
		case gathered:
			c.backwardDY32(wfT, x, dy, i0, i1, pw, dx, act)
			if dx != nil && maskDx {
				reluMask(dx[i0*c.inWidth():i1*c.inWidth()], x[i0*c.inWidth():i1*c.inWidth()])
			}
		case byDY:
			backwardDY(c, we, x, dy, i0, i1, pw, dx)
		default:
			backwardX(c, we, x, dy, i0, i1, pw, dx)
		}
	})
	sumW := dw
	if gathered { // sum in g's layout, then dw from it: the same sums in the same order
		sumW = c.toG(dw)
	}
	const span = 256 // weights a row of forRows, each summed over the tasks in order
	forRows((len(sumW)+span-1)/span, span*tasks, func(r0, r1 int) {
		j0, j1 := r0*span, min(r1*span, len(sumW))
		for t := range tasks {
			for j, v := range partW[t*wlen+j0 : t*wlen+j1] {
				sumW[j0+j] += v
			}
		}
	})
	for t := range tasks {
		for j, v := range partB[t*len(db) : (t+1)*len(db)] {
			db[j] += v
		}
	}
	if gathered {
		c.fromG(sumW, dw)
	}
	if dx != nil && maskDx && !gathered {
		reluBack(dx, x)
	}
	return dx
}

// sumPlanes adds to s[o] the sum of plane o of img (len(s) planes of hw),
// each sum in order from the plane's first value; four planes at a time,
// so that four independent chains of additions overlap.
func sumPlanes(s, img []float64, hw int) {
	o := 0
	for ; o+4 <= len(s); o += 4 {
		p0 := img[o*hw : (o+1)*hw]
		p1, p2, p3 := img[(o+1)*hw:][:len(p0)], img[(o+2)*hw:][:len(p0)], img[(o+3)*hw:][:len(p0)]
		var s0, s1, s2, s3 float64
		for q, v := range p0 {
			s0 += v
			s1 += p1[q]
			s2 += p2[q]
			s3 += p3[q]
		}
		s[o] += s0
		s[o+1] += s1
		s[o+2] += s2
		s[o+3] += s3
	}
	for ; o < len(s); o++ {
		var s0 float64
		for _, v := range img[o*hw : (o+1)*hw] {
			s0 += v
		}
		s[o] += s0
	}
}

// gather copies the planes of the images [i0, i1) of rows (width
// planes·h·w) into buf side by side, as E's: plane p of image i at
// buf[p·cols + (i−i0)·h·w], cols = (i1−i0)·h·w.
func gather[E linalg.Float](c conv2d, rows []float64, planes, i0, i1 int, buf []E) {
	hw := c.h * c.w
	cols, width := (i1-i0)*hw, planes*hw
	b64, is64 := any(buf).([]float64)
	for i := i0; i < i1; i++ {
		for p := range planes {
			src, at := rows[i*width+p*hw:i*width+(p+1)*hw], p*cols+(i-i0)*hw
			if is64 {
				copy(b64[at:], src)
			} else {
				linalg.ToF32(any(buf[at:at+hw]).([]float32), src)
			}
		}
	}
}

// scatter is gather's inverse in float64: plane p of image i from buf
// into rows.
func (c conv2d) scatter(buf []float64, planes, i0, i1 int, rows []float64) {
	hw := c.h * c.w
	cols, width := (i1-i0)*hw, planes*hw
	for i := i0; i < i1; i++ {
		for p := range planes {
			copy(rows[i*width+p*hw:i*width+(p+1)*hw], buf[p*cols+(i-i0)*hw:])
		}
	}
}

// backwardX is backward's task on the images [i0, i1) through col(X):
// their weight gradient into pw (zero before) and, when dx is not nil,
// their dX by col2im (wt: the filters).
func backwardX[E linalg.Float](c conv2d, wt []E, x, dy []float64, i0, i1 int, pw, dx []float64) {
	hw, kk := c.h*c.w, c.cin*c.k*c.k
	cols := (i1 - i0) * hw
	cb, gb := getBuf[E](kk*cols), getBuf[E](c.cout*cols)
	defer putBuf(cb)
	defer putBuf(gb)
	col, g := *cb, *gb
	gather(c, dy, c.cout, i0, i1, g)
	xs, xb := rowsAs[E](x[i0*c.inWidth() : i1*c.inWidth()])
	for i := range i1 - i0 {
		im2colOf(c, xs[i*c.inWidth():(i+1)*c.inWidth()], col[i*hw:], cols)
	}
	putBuf(xb)
	convProduct(false, true, c.cout, kk, cols, g, col, 1, pw)
	if dx == nil {
		return
	}
	ob := getCol(kk * cols)
	defer putBuf(ob)
	out := *ob
	convProduct(true, false, kk, cols, c.cout, wt, g, 0, out)
	for i := i0; i < i1; i++ {
		c.col2im(out[(i-i0)*hw:], cols, dx[i*c.inWidth():(i+1)*c.inWidth()])
	}
}

// backwardDY is backward's task on the images [i0, i1) through col(dY)
// (see flipped): their weight gradient into pw (zero before) and, when dx
// is not nil, their dX as the convolution of dY with the flipped filters
// wf.
func backwardDY[E linalg.Float](c conv2d, wf []E, x, dy []float64, i0, i1 int, pw, dx []float64) {
	hw, k2 := c.h*c.w, c.k*c.k
	cols, ky := (i1-i0)*hw, c.cout*k2
	ct := conv2d{c.cout, c.cin, c.k, c.h, c.w, c.prec} // dY's im2col
	yb, xb, gb := getBuf[E](ky*cols), getBuf[E](c.cin*cols), getCol(c.cin*ky)
	defer putBuf(yb)
	defer putBuf(xb)
	defer putBuf(gb)
	coly, xt, g := *yb, *xb, *gb
	dys, db := rowsAs[E](dy[i0*c.outWidth() : i1*c.outWidth()])
	for i := range i1 - i0 {
		im2colOf(ct, dys[i*c.outWidth():(i+1)*c.outWidth()], coly[i*hw:], cols)
	}
	putBuf(db)
	gather(c, x, c.cin, i0, i1, xt)
	// g[ci, (o, ky', kx')] = Σ_q X[ci, q]·col(dY)[(o, ky', kx'), q].
	convProduct(false, true, c.cin, ky, cols, xt, coly, 0, g)
	for o := range c.cout {
		for ci := range c.cin {
			dst, src := pw[(o*c.cin+ci)*k2:(o*c.cin+ci+1)*k2], g[ci*ky+o*k2:ci*ky+(o+1)*k2]
			for j, v := range src {
				dst[k2-1-j] = v
			}
		}
	}
	if dx == nil {
		return
	}
	ob := getCol(c.cin * cols)
	defer putBuf(ob)
	out := *ob
	convProduct(false, false, c.cin, cols, ky, wf, coly, 0, out)
	c.scatter(out, c.cin, i0, i1, dx)
}
