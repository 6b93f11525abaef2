package flows

// The Float32 passes without col(X): products that read their operands
// where they lie (linalg.GemmGatherMaskF32, linalg.GemmGatherF32).
//
// The forward pass and dX read a task's images flat: copied once, rounded
// to float32, channel-major, the images one after another with no padding
// (flatLayout), so row (ci, ky, kx) of col(X) is plane ci at the offset
// (ky − p)·w + kx − p (p = k/2). Where that shift leaves a pixel's image it
// lands on a neighbouring row, image or the plane's guard, and the tap's
// mask (tapMask), applied while the product packs its panels, zeroes the
// entry: each column of col(X) holds exactly the padded image's values, so
// every output has conv.go's float32 bits, and the products run over the
// real pixels only (no pad columns computed and dropped).
//
// The weight gradient uses a padded layout instead: each image's rows
// widened to rw = w + p (p zero columns after each row), p zero rows after
// each image, the images one after another, and p·rw + p zeros (the guard)
// before the first and after the last. Shifting a pixel by (dy, dx), |dy|,
// |dx| ≤ p, is then adding dy·rw + dx to its position, and a shift that
// leaves the image lands on a zero.
//
// The weight gradient sums over pixels: g = X·col(dY)ᵀ takes X pixel-major
// (the task's real pixels in order, cin values each) as its transposed
// operand and col(dY)ᵀ from dY padded pixel-major (cout values a position),
// its columns ordered (shift, output channel) so that with cout = 32 a
// panel of the float32 kernel is one shift's contiguous run. The sum runs
// over the same pixels in the same order as conv.go's, so its bits too are
// those of the float32 product on col(dY).

import (
	"sync"

	"github.com/gonormflows/flows/internal/linalg"
)

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

// padT writes the images [i0, i1) of rows (planes·h·w each) into buf in
// the padded layout l pixel-major, rounded to float32: position q's planes
// values at buf[q·planes:] ((2·guard + pos) × planes), zeros elsewhere.
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

// flatLayout is the unpadded layout of nimg images of a conv, in floats:
// each plane the images' pixels one after another (n = nimg·h·w of them)
// between two guards of g = p·w + p, so that every shift of a tap, at most
// p rows and p columns, stays inside the plane. The guards are never
// written: the taps' masks (tapMask) drop every value a shift takes from
// outside its own image.
type flatLayout struct {
	g, n, plane int
}

// flat returns the flat layout of nimg images.
func (c conv2d) flat(nimg int) flatLayout {
	p := c.k / 2
	f := flatLayout{g: p*c.w + p, n: nimg * c.h * c.w}
	f.plane = 2*f.g + f.n
	return f
}

// flatten writes the images [i0, i1) of rows (planes·h·w each) into buf
// (planes × f.plane) in the flat layout, rounded to float32 (after a ReLU,
// max(v, 0), when act).
func (c conv2d) flatten(rows []float64, planes, i0, i1 int, f flatLayout, buf []float32, act bool) {
	hw := c.h * c.w
	for i := i0; i < i1; i++ {
		img := rows[i*planes*hw : (i+1)*planes*hw]
		for ch := range planes {
			d, s := buf[ch*f.plane+f.g+(i-i0)*hw:][:hw], img[ch*hw:(ch+1)*hw]
			if act {
				linalg.ReLUToF32(d, s)
			} else {
				linalg.ToF32(d, s)
			}
		}
	}
}

// unflatten copies out (planes × f.n, as the products write it) into the
// images [i0, i1) of rows.
func (c conv2d) unflatten(out []float64, planes, i0, i1 int, f flatLayout, rows []float64) {
	hw := c.h * c.w
	for i := i0; i < i1; i++ {
		img := rows[i*planes*hw : (i+1)*planes*hw]
		for ch := range planes {
			copy(img[ch*hw:(ch+1)*hw], out[ch*f.n+(i-i0)*hw:][:hw])
		}
	}
}

// fill sets every element of s to v, by copies of the part already set (a
// loop of single stores was 3% of a conditioner's step).
func fill(s []float64, v float64) {
	if len(s) == 0 {
		return
	}
	s[0] = v
	for set := 1; set < len(s); set *= 2 {
		copy(s[set:], s[:set])
	}
}

// flatOffsets returns the offsets in a flat buffer of the rows (ch, ky,
// kx) of col: ch·plane + g + (ky − p)·w + kx − p.
func (c conv2d) flatOffsets(planes int, f flatLayout) []int {
	p := c.k / 2
	off := make([]int, 0, planes*c.k*c.k)
	for ch := range planes {
		for ky := range c.k {
			for kx := range c.k {
				off = append(off, ch*f.plane+f.g+(ky-p)*c.w+kx-p)
			}
		}
	}
	return off
}

// maskKey names a tapMask: the conv's image and filter sizes, the planes
// and the images of a task.
type maskKey struct{ h, w, k, planes, nimg int }

// tapMasks caches tapMask's masks (a few KB each; a flow uses a few).
var tapMasks sync.Map

// tapMask returns the masks of col's rows (ch, ky, kx), ch < planes, over
// the flat layout of nimg images: row (ch, ky, kx) has mask ky·k + kx,
// whose bit for pixel (y, x) of an image is set when (y + ky − p, x + kx −
// p) lies in the image. So each masked column of col(X) holds exactly the
// padded image's values, and the products conv.go's float32 bits.
func (c conv2d) tapMask(planes, nimg int) *linalg.GatherMask {
	key := maskKey{c.h, c.w, c.k, planes, nimg}
	if m, ok := tapMasks.Load(key); ok {
		return m.(*linalg.GatherMask)
	}
	k2, p, n := c.k*c.k, c.k/2, nimg*c.h*c.w
	m := &linalg.GatherMask{Class: make([]int32, planes*k2), Words: (n + 31) / 32}
	for r := range m.Class {
		m.Class[r] = int32(r % k2)
	}
	m.Bits = make([]uint32, k2*m.Words)
	for t := range k2 {
		dy, dx := t/c.k-p, t%c.k-p
		bits := m.Bits[t*m.Words:]
		for j := range n {
			y, x := j/c.w%c.h+dy, j%c.w+dx
			if y >= 0 && y < c.h && x >= 0 && x < c.w {
				bits[j/32] |= 1 << (j % 32)
			}
		}
	}
	m2, _ := tapMasks.LoadOrStore(key, m)
	return m2.(*linalg.GatherMask)
}

// forward32 is forwardAct in Float32 without col(X).
func (c conv2d) forward32(wt, b, x []float64, n int, act bool) []float64 {
	kk := c.cin * c.k * c.k
	wtT := transpose32(wt, c.cout, kk) // Wᵀ: kk × cout
	y := make([]float64, n*c.outWidth())
	per, tasks := c.tasks(n)
	cols := seq(per * c.h * c.w)
	linalg.Parallel(tasks, func(t int) {
		i0, i1 := span(t, per, n)
		f := c.flat(i1 - i0)
		xb, yb := getBuf[float32](c.cin*f.plane), getCol(scratchRows(c.cout)*f.n)
		defer putBuf(xb)
		defer putBuf(yb)
		xp, yt := *xb, *yb
		c.flatten(x, c.cin, i0, i1, f, xp, act)
		for o, bo := range b {
			fill(yt[o*f.n:(o+1)*f.n], bo)
		}
		linalg.GemmGatherMaskF32(c.cout, f.n, kk, wtT, c.cout, xp, c.flatOffsets(c.cin, f), cols[:f.n], c.tapMask(c.cin, i1-i0), 1, yt)
		c.unflatten(yt, c.cout, i0, i1, f, y)
	})
	return y
}

// gLen returns the length of a task's weight gradient g in backwardDY32:
// cin rows of (tap, output channel) columns, the rows rounded up for the
// product's scratch rows (see scratchRows).
func (c conv2d) gLen() int { return scratchRows(c.cin) * c.cout * c.k * c.k }

// toG returns the weight gradient dw (cout × cin × k × k) in g's layout:
// g[ci, (j, o)] = dw[o, ci, k·k − 1 − j] (the taps flipped), cin·cout·k·k
// floats.
func (c conv2d) toG(dw []float64) []float64 {
	k2 := c.k * c.k
	ky := c.cout * k2
	g := make([]float64, c.cin*ky)
	for o := range c.cout {
		for ci := range c.cin {
			src := dw[(o*c.cin+ci)*k2 : (o*c.cin+ci+1)*k2]
			for j := range k2 {
				g[ci*ky+j*c.cout+o] = src[k2-1-j]
			}
		}
	}
	return g
}

// fromG is toG's inverse: dw from g.
func (c conv2d) fromG(g, dw []float64) {
	k2 := c.k * c.k
	ky := c.cout * k2
	for o := range c.cout {
		for ci := range c.cin {
			dst := dw[(o*c.cin+ci)*k2 : (o*c.cin+ci+1)*k2]
			for j := range k2 {
				dst[k2-1-j] = g[ci*ky+j*c.cout+o]
			}
		}
	}
}

// backwardDY32 is backwardDY in Float32 without col(dY): the weight
// gradient of the images [i0, i1) into pw in g's layout (gLen floats,
// see toG) and, when dx is
// not nil, their dX, with wfT the flipped filters transposed (cout·k·k ×
// cin); the conv's input is max(x, 0) when act.
func (c conv2d) backwardDY32(wfT []float32, x, dy []float64, i0, i1 int, pw, dx []float64, act bool) {
	hw, k2 := c.h*c.w, c.k*c.k
	cols, ky := (i1-i0)*hw, c.cout*k2
	l := c.layout(i1 - i0)
	xb, tb := getBuf[float32](cols*c.cin), getBuf[float32](l.plane*c.cout)
	defer putBuf(xb)
	defer putBuf(tb)
	xT, dyT := *xb, *tb
	for i := i0; i < i1; i++ {
		c.pixelMajor(x[i*c.inWidth():(i+1)*c.inWidth()], xT[(i-i0)*hw*c.cin:], act)
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
	linalg.GemmGatherF32(c.cin, ky, cols, xT, c.cin, dyT, pix, taps, 0, pw)
	if dx == nil {
		return
	}
	f := c.flat(i1 - i0)
	pb, ob := getBuf[float32](c.cout*f.plane), getCol(scratchRows(c.cin)*f.n)
	defer putBuf(pb)
	defer putBuf(ob)
	dyp, out := *pb, *ob
	c.flatten(dy, c.cout, i0, i1, f, dyp, false)
	linalg.GemmGatherMaskF32(c.cin, f.n, ky, wfT, c.cin, dyp, c.flatOffsets(c.cout, f), seq(f.n), c.tapMask(c.cout, i1-i0), 0, out)
	c.unflatten(out, c.cin, i0, i1, f, dx)
}

// pixelMajor writes the image img (cin planes of h·w) pixel-major into d
// (pixel q's cin values at d[q·cin:]), rounded to float32 (after a ReLU
// when act). An image's pixel-major block is small enough to stay in the
// first-level cache (25 KB for 32 planes of 14×14): blocking the pixels
// further made it slower.
func (c conv2d) pixelMajor(img []float64, d []float32, act bool) {
	hw := c.h * c.w
	for ci := range c.cin {
		dd := d[ci:]
		for q, v := range img[ci*hw : (ci+1)*hw] {
			if act {
				v = max(v, 0)
			}
			dd[q*c.cin] = float32(v)
		}
	}
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
