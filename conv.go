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
// with col⁻¹ adding each shifted row back where it came from (col2im). The
// output of one image is one product written straight into its rows of Y,
// so the layout needs no transposes: channel-major in, channel-major out.
//
// Work is split by images: a task is a fixed number of consecutive images
// that depends on the shapes alone (about convTaskWork multiply-adds), the
// tasks run on the kernel's helper pool (linalg.Parallel) and each calls the
// single-goroutine product. Per-image outputs do not depend on the split;
// dW and db, sums over images, are accumulated per task in image order and
// the tasks' partial sums are added in task order. So results are
// bit-identical on any number of workers. Im2col rather than a direct
// kernel: the products then run on the packed, register-blocked kernel,
// and col(X) costs k² times the input's memory only for the images of
// tasks in flight (a training pass keeps X, never col(X)).

import (
	"sync"

	"github.com/gonormflows/flows/internal/linalg"
)

// convTaskWork is about how many multiply-adds one task of a convolution
// holds: enough to outweigh handing it to another goroutine.
const convTaskWork = 1 << 20

// convProduct is the one product every convolution pass calls: c =
// op(a)·op(b) + beta·c on the calling goroutine (the passes run tasks in
// parallel themselves), in float64 or, for Float32, in float32 (see
// Precision).
func convProduct(prec Precision, ta, tb bool, m, n, k int, a, b []float64, beta float64, c []float64) {
	if prec == Float32 {
		linalg.GemmSerialF32(ta, tb, m, n, k, 1, a, b, beta, c)
		return
	}
	linalg.GemmSerial(ta, tb, m, n, k, 1, a, b, beta, c)
}

// colPool keeps im2col buffers between tasks: a task is often one image,
// and allocating (and zeroing) its buffer each time cost more than the
// copies. Every use overwrites the whole buffer first.
var colPool sync.Pool

// getCol returns a buffer of n floats from colPool (contents arbitrary).
func getCol(n int) *[]float64 {
	if p, ok := colPool.Get().(*[]float64); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	buf := make([]float64, n)
	return &buf
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

// tasks returns how many images each task takes and how many tasks n
// images make.
func (c conv2d) tasks(n int) (per, tasks int) {
	work := c.weights() * c.h * c.w
	per = max(1, convTaskWork/max(work, 1))
	return per, (n + per - 1) / per
}

// im2col writes col(X) of one image x (cin × h·w) into col
// (cin·k·k × h·w). Row (ci, ky, kx) of col is the plane ci shifted by
// dy·w + dx in the row-major pixel order, so the rows y whose source row
// y + dy is inside take one copy of a contiguous span; the entries that
// span carries across a row's edge (the |dx| columns at the side the
// shift leaves) and the rows outside are then cleared. One copy per row of
// col rather than one per image row: at 14×14 the per-row copies were
// most of the time outside the products.
func (c conv2d) im2col(x, col []float64) {
	hw, pad, w := c.h*c.w, c.k/2, c.w
	r := 0
	for ci := 0; ci < c.cin; ci++ {
		plane := x[ci*hw : (ci+1)*hw]
		for ky := 0; ky < c.k; ky++ {
			dy := ky - pad
			y0, y1 := max(0, -dy), min(c.h, c.h-dy)
			for kx := 0; kx < c.k; kx++ {
				dst := col[r*hw : (r+1)*hw]
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
				if x0 == 0 && x1 == w {
					continue
				}
				for y := y0; y < y1; y++ {
					row := dst[y*w : (y+1)*w]
					clear(row[:x0])
					clear(row[x1:])
				}
			}
		}
	}
}

// col2im adds the rows of col (cin·k·k × h·w) back into the image dx
// (cin × h·w) where im2col took them from.
func (c conv2d) col2im(col, dx []float64) {
	hw, pad := c.h*c.w, c.k/2
	r := 0
	for ci := 0; ci < c.cin; ci++ {
		plane := dx[ci*hw : (ci+1)*hw]
		for ky := 0; ky < c.k; ky++ {
			for kx := 0; kx < c.k; kx++ {
				src := col[r*hw : (r+1)*hw]
				r++
				dy, dxo := ky-pad, kx-pad
				x0, x1 := max(0, -dxo), min(c.w, c.w-dxo)
				for y := 0; y < c.h; y++ {
					sy := y + dy
					if sy < 0 || sy >= c.h || x0 >= x1 {
						continue
					}
					d := plane[sy*c.w+x0+dxo : sy*c.w+x1+dxo]
					for j, v := range src[y*c.w+x0 : y*c.w+x1] {
						d[j] += v
					}
				}
			}
		}
	}
}

// forward returns Y for the n images x (n × cin·h·w): n × cout·h·w.
func (c conv2d) forward(wt, b, x []float64, n int) []float64 {
	hw, kk := c.h*c.w, c.cin*c.k*c.k
	y := make([]float64, n*c.outWidth())
	per, tasks := c.tasks(n)
	linalg.Parallel(tasks, func(t int) {
		buf := getCol(kk * hw)
		defer colPool.Put(buf)
		col := *buf
		for i := t * per; i < min(n, (t+1)*per); i++ {
			yi := y[i*c.outWidth() : (i+1)*c.outWidth()]
			for o, bo := range b {
				row := yi[o*hw : (o+1)*hw]
				for q := range row {
					row[q] = bo
				}
			}
			c.im2col(x[i*c.inWidth():(i+1)*c.inWidth()], col)
			convProduct(c.prec, false, false, c.cout, hw, kk, wt, col, 1, yi)
		}
	})
	return y
}

// backward adds the weight and bias gradients of the n images x given
// dY (n × cout·h·w) into dw and db, and returns dX (n × cin·h·w) when
// wantDx, else nil.
func (c conv2d) backward(wt, x, dy []float64, n int, dw, db []float64, wantDx bool) []float64 {
	hw, kk := c.h*c.w, c.cin*c.k*c.k
	var dx []float64
	if wantDx {
		dx = make([]float64, n*c.inWidth())
	}
	per, tasks := c.tasks(n)
	partW := make([]float64, tasks*len(dw))
	partB := make([]float64, tasks*len(db))
	linalg.Parallel(tasks, func(t int) {
		buf := getCol(kk * hw)
		defer colPool.Put(buf)
		col := *buf
		pw, pb := partW[t*len(dw):(t+1)*len(dw)], partB[t*len(db):(t+1)*len(db)]
		for i := t * per; i < min(n, (t+1)*per); i++ {
			dyi := dy[i*c.outWidth() : (i+1)*c.outWidth()]
			for o := range pb {
				var s float64
				for _, v := range dyi[o*hw : (o+1)*hw] {
					s += v
				}
				pb[o] += s
			}
			c.im2col(x[i*c.inWidth():(i+1)*c.inWidth()], col)
			convProduct(c.prec, false, true, c.cout, kk, hw, dyi, col, 1, pw)
			if wantDx {
				convProduct(c.prec, true, false, kk, hw, c.cout, wt, dyi, 0, col)
				c.col2im(col, dx[i*c.inWidth():(i+1)*c.inWidth()])
			}
		}
	})
	for t := range tasks {
		for j, v := range partW[t*len(dw) : (t+1)*len(dw)] {
			dw[j] += v
		}
		for j, v := range partB[t*len(db) : (t+1)*len(db)] {
			db[j] += v
		}
	}
	return dx
}
