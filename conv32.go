package flows

// The Float32 convolution passes without col(X): products that read their
// operands where they lie (linalg.GemmGatherF32).
//
// A task's images are copied once, rounded to float32, into a padded
// layout: each image's rows widened to rw = w + p (p = k/2) with p zero
// columns after each row, p zero rows after each image, the images one
// after another, and p·rw + p zeros (the guard) before the first and after
// the last. Shifting a pixel by (dy, dx), |dy|, |dx| ≤ p, is then adding
// dy·rw + dx to its position, and a shift that leaves the image lands on a
// zero: a pad column of the same or the previous row, a pad row of the
// same or the previous image, or the guard. So row (ci, ky, kx) of col(X)
// is the padded plane ci at an offset, and the products take it from there
// (the kernel's panels are the only copy), over the padded positions; the
// outputs at pad positions are computed and dropped (15% more columns at
// 14×14, 31% at 7×7), the others copied out. Each real pixel's column holds
// exactly col(X)'s values, so every output has conv.go's float32 bits.
//
// The weight gradient sums over pixels: g = X·col(dY)ᵀ takes X pixel-major
// (the task's real pixels in order, cin values each) as its transposed
// operand and col(dY)ᵀ from dY padded pixel-major (cout values a position),
// its columns ordered (shift, output channel) so that with cout = 32 a
// panel of the float32 kernel is one shift's contiguous run. The sum runs
// over the same pixels in the same order as conv.go's, so its bits too are
// those of the float32 product on col(dY).

import "github.com/gonormflows/flows/internal/linalg"

// convIm2col32 makes the Float32 passes take conv.go's im2col route, for
// the tests that compare the two routes bit for bit.
var convIm2col32 bool

// padLayout is the padded layout of nimg images of a conv (see the file
// comment), in floats: row width rw, an image's block blk = (h+p)·rw, the
// guard, a plane's length, and the positions the products run over.
type padLayout struct {
	p, rw, blk, guard, plane, pos int
}

// layout returns the padded layout of nimg images.
func (c conv2d) layout(nimg int) padLayout {
	p := c.k / 2
	l := padLayout{p: p, rw: c.w + p}
	l.blk = (c.h + p) * l.rw
	l.guard = p*l.rw + p
	l.pos = nimg * l.blk
	l.plane = 2*l.guard + l.pos
	return l
}

// at returns the position of pixel (y, x) of the task's image t.
func (l padLayout) at(t, y, x int) int { return l.guard + t*l.blk + y*l.rw + x }

// shift returns the offset of the filter tap (ky, kx) of a k×k filter.
func (l padLayout) shift(ky, kx int) int { return (ky-l.p)*l.rw + kx - l.p }

// pad writes the images [i0, i1) of rows (planes·h·w each) into buf
// (planes × l.plane), rounded to float32 (after a ReLU, max(v, 0), when
// act), channel-major, zeros elsewhere.
func (c conv2d) pad(rows []float64, planes, i0, i1 int, l padLayout, buf []float32, act bool) {
	hw := c.h * c.w
	clear(buf[:planes*l.plane])
	for i := i0; i < i1; i++ {
		img := rows[i*planes*hw : (i+1)*planes*hw]
		for ch := range planes {
			for y := range c.h {
				at := ch*l.plane + l.at(i-i0, y, 0)
				d, s := buf[at:at+c.w], img[ch*hw+y*c.w:ch*hw+(y+1)*c.w]
				if !act {
					linalg.ToF32(d, s)
					continue
				}
				for x, v := range s {
					d[x] = float32(max(v, 0))
				}
			}
		}
	}
}

// padT is pad pixel-major: position q's planes values at buf[q·planes:]
// ((2·guard + pos) × planes).
func (c conv2d) padT(rows []float64, planes, i0, i1 int, l padLayout, buf []float32) {
	hw := c.h * c.w
	clear(buf[:l.plane*planes])
	for i := i0; i < i1; i++ {
		img := rows[i*planes*hw : (i+1)*planes*hw]
		for y := range c.h {
			for x := range c.w {
				d := buf[l.at(i-i0, y, x)*planes:][:planes]
				for ch := range d {
					d[ch] = float32(img[ch*hw+y*c.w+x])
				}
			}
		}
	}
}

// unpad copies the real pixels of out (planes × l.pos, positions from the
// first image's, as the products write them) into the images [i0, i1) of
// rows.
func (c conv2d) unpad(out []float64, planes, i0, i1 int, l padLayout, rows []float64) {
	hw := c.h * c.w
	for i := i0; i < i1; i++ {
		img := rows[i*planes*hw : (i+1)*planes*hw]
		for ch := range planes {
			for y := range c.h {
				at := ch*l.pos + l.at(i-i0, y, 0) - l.guard
				copy(img[ch*hw+y*c.w:ch*hw+(y+1)*c.w], out[at:at+c.w])
			}
		}
	}
}

// tapOffsets returns the offsets in a padded buffer of the rows (ch, ky,
// kx) of col: ch·stride + guard + shift(ky, kx).
func (c conv2d) tapOffsets(planes, stride int, l padLayout) []int {
	off := make([]int, 0, planes*c.k*c.k)
	for ch := range planes {
		for ky := range c.k {
			for kx := range c.k {
				off = append(off, ch*stride+l.guard+l.shift(ky, kx))
			}
		}
	}
	return off
}

// scratchRows returns m rounded up to a multiple of 12: the rows of a
// GemmGatherF32 output buffer that lets the product compute its last row
// panel in place (the rows past m are scratch).
func scratchRows(m int) int { return (m + 11) / 12 * 12 }

// seq returns 0, 1, …, n−1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// forward32 is forwardAct in Float32 without col(X).
func (c conv2d) forward32(wt, b, x []float64, n int, act bool) []float64 {
	kk := c.cin * c.k * c.k
	wtT := transpose32(wt, c.cout, kk) // Wᵀ: kk × cout
	y := make([]float64, n*c.outWidth())
	per, tasks := c.tasks(n)
	cols := seq(c.layout(per).pos)
	linalg.Parallel(tasks, func(t int) {
		i0, i1 := span(t, per, n)
		l := c.layout(i1 - i0)
		xb, yb := getBuf[float32](c.cin*l.plane), getCol(scratchRows(c.cout)*l.pos)
		defer putBuf(xb)
		defer putBuf(yb)
		xp, yt := *xb, *yb
		c.pad(x, c.cin, i0, i1, l, xp, act)
		for o, bo := range b {
			row := yt[o*l.pos : (o+1)*l.pos]
			for q := range row {
				row[q] = bo
			}
		}
		linalg.GemmGatherF32(c.cout, l.pos, kk, wtT, c.cout, xp, c.tapOffsets(c.cin, l.plane, l), cols[:l.pos], 1, yt)
		c.unpad(yt, c.cout, i0, i1, l, y)
	})
	return y
}

// backwardDY32 is backwardDY in Float32 without col(dY): the weight
// gradient of the images [i0, i1) into pw (zero before) and, when dx is
// not nil, their dX, with wfT the flipped filters transposed (cout·k·k ×
// cin); the conv's input is max(x, 0) when act.
func (c conv2d) backwardDY32(wfT []float32, x, dy []float64, i0, i1 int, pw, dx []float64, act bool) {
	hw, k2 := c.h*c.w, c.k*c.k
	cols, ky := (i1-i0)*hw, c.cout*k2
	l := c.layout(i1 - i0)
	xb, tb, gb := getBuf[float32](cols*c.cin), getBuf[float32](l.plane*c.cout), getCol(scratchRows(c.cin)*ky)
	defer putBuf(xb)
	defer putBuf(tb)
	defer putBuf(gb)
	xT, dyT, g := *xb, *tb, *gb
	// X pixel-major, the task's real pixels in order.
	for i := i0; i < i1; i++ {
		img := x[i*c.inWidth() : (i+1)*c.inWidth()]
		for ci := range c.cin {
			d := xT[(i-i0)*hw*c.cin+ci:]
			for q, v := range img[ci*hw : (ci+1)*hw] {
				if act {
					v = max(v, 0)
				}
				d[q*c.cin] = float32(v)
			}
		}
	}
	c.padT(dy, c.cout, i0, i1, l, dyT)
	pix := make([]int, 0, cols) // row q of col(dY)ᵀ: real pixel q's position
	for t := range i1 - i0 {
		for y := range c.h {
			for xx := range c.w {
				pix = append(pix, l.at(t, y, xx)*c.cout)
			}
		}
	}
	taps := make([]int, 0, ky) // column (tap, o): tap's shift, channel o
	for j := range k2 {
		for o := range c.cout {
			taps = append(taps, l.shift(j/c.k, j%c.k)*c.cout+o)
		}
	}
	// g[ci, (j, o)] = Σ_q X[ci, q]·dY[o, q shifted by tap j].
	linalg.GemmGatherF32(c.cin, ky, cols, xT, c.cin, dyT, pix, taps, 0, g)
	for o := range c.cout {
		for ci := range c.cin {
			dst := pw[(o*c.cin+ci)*k2 : (o*c.cin+ci+1)*k2]
			for j := range k2 {
				dst[k2-1-j] = g[ci*ky+j*c.cout+o]
			}
		}
	}
	if dx == nil {
		return
	}
	pb, ob := getBuf[float32](c.cout*l.plane), getCol(scratchRows(c.cin)*l.pos)
	defer putBuf(pb)
	defer putBuf(ob)
	dyp, out := *pb, *ob
	c.pad(dy, c.cout, i0, i1, l, dyp, false)
	linalg.GemmGatherF32(c.cin, l.pos, ky, wfT, c.cin, dyp, c.tapOffsets(c.cout, l.plane, l), seq(l.pos), 0, out)
	c.unpad(out, c.cin, i0, i1, l, dx)
}

// flippedT returns the flipped filters (see flipped) transposed and
// rounded to float32: row (o, ky, kx) holds W'[·, o, ky, kx] (cout·k·k ×
// cin).
func (c conv2d) flippedT(wt []float64) []float32 {
	return transpose32(c.flipped(wt), c.cin, c.cout*c.k*c.k)
}

// transpose32 returns the r × c matrix a transposed (c × r) and rounded
// to float32.
func transpose32(a []float64, r, c int) []float32 {
	t := make([]float32, r*c)
	for i := range r {
		for j, v := range a[i*c : (i+1)*c] {
			t[j*r+i] = float32(v)
		}
	}
	return t
}
