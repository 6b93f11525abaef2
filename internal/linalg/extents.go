package linalg

// Products that skip known zeros of b: a masked layer's weights (MADE with
// sorted degrees, see flows' madeblocks.go) are block-triangular, so a group
// of output columns needs only a range of k steps (x·Wm: a prefix of the
// inputs; dy·Wmᵀ: a suffix of the outputs), and a weight gradient needs only
// the rows of its used weights.
//
// Extents describe that per group of ExtentCols columns of c, a multiple of
// every kernel's NR (float64: 16, 8, 4; float32: 32, 16, 4). The product
// runs Gemm's k-blocks (which depend only on k) and, in each, only the steps
// [KLo, KHi) of a group, with Gemm's arithmetic per element: per k-block
// that meets the range, one FMA per step in increasing p from zero, then
// c = fma(1, acc, beta'·c), beta' the caller's beta for the first block
// computed and 1 after. An accumulator that starts at +0 never becomes −0
// under round-to-nearest, so the steps left out, whose products are ±0
// because b is zero there (and a finite), would not have changed it: c is
// Gemm's c on the same operands bit for bit, except that Gemm turns a −0
// in c into +0 where it adds a block that is all zero (a block skipped
// here leaves the −0), and that where a holds ±Inf or NaN at a step left
// out, Gemm's NaN (Inf·0) does not reach c here. A kernel's panel never
// straddles two groups (the 1×64 row kernel runs once per group of its
// panel, each on the group's own steps), so every kernel computes the same
// steps for an element: the result is the same on every kernel,
// GOMAXPROCS and worker count (the row chunks run in parallel, each
// element computed whole by one goroutine).

// ExtentCols is the width of a group of columns of Extents.
const ExtentCols = 32

// Extents says which part of a product is needed, per group g of ExtentCols
// columns of c (columns [g·ExtentCols, (g+1)·ExtentCols)): only k steps
// [KLo[g], KHi[g]) contribute (b is zero outside them), and only rows
// [0, Rows[g]) of c are computed (later rows of the group are not
// written). Each slice has one entry per group, none negative; KHi and
// Rows may exceed k and m (then they mean all of them), so one Extents
// serves every batch size. A group with no k steps gets c = beta·c on its
// rows.
type Extents struct {
	KLo, KHi, Rows []int
}

// check panics unless e fits a product n columns wide with k steps.
func (e *Extents) check(n, k int) {
	g := blocks(n, ExtentCols)
	if len(e.KLo) != g || len(e.KHi) != g || len(e.Rows) != g {
		panic("linalg: Extents: want one entry per group of columns")
	}
	for i := range g {
		if e.KLo[i] < 0 || e.KHi[i] < 0 || e.Rows[i] < 0 {
			panic("linalg: Extents: negative bound")
		}
	}
}

// GemmExt sets c = op(a)·op(b) + beta·c as Gemm (alpha 1) where e says the
// product is needed and b may be nonzero (see Extents), on the calling
// goroutine alone when serial: Gemm's bits, except a −0 in c that Gemm
// would turn into +0 and the NaN that Gemm gets from a non-finite a at a
// step left out (see extents.go). The openblas build runs the whole
// product on OpenBLAS unless serial, as Gemm and GemmSerial do.
func GemmExt(serial, ta, tb bool, m, n, k int, a, b []float64, beta float64, c []float64, e *Extents) {
	if backend != nil && !serial {
		e.check(n, k)
		backend(ta, tb, m, n, k, 1, a, b, beta, c)
		return
	}
	gemmExt64(nil, serial, ta, tb, m, n, k, a, b, beta, c, e)
}

// gemmExt64 is GemmExt on our kernels, kn's (nil: pickKernel's).
func gemmExt64(kn *kernelInfo, serial, ta, tb bool, m, n, k int, a, b []float64, beta float64, c []float64, e *Extents) {
	if !prepare(m, n, k, 1, a, b, beta, c) {
		return
	}
	e.check(n, k)
	j := extJob[float64, float64]{ta: ta, tb: tb, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c, e: e}
	j.kn = kn
	if kn == nil {
		j.kn = pickKernel(m, n, false)
	}
	j.direct = ta || !nearMultiple4K(k*8)
	bp := bPool.Get().(*[]float64)
	defer bPool.Put(bp)
	j.packB64(bp)
	j.run(serial, false)
}

// GemmExtF32Of is GemmExt computed in float32 as GemmF32Of computes it,
// on float32 or float64 operands: GemmF32Of's bits, except a −0 in c.
func GemmExtF32Of[A, B Float](serial, ta, tb bool, m, n, k int, a []A, b []B, beta float64, c []float64, e *Extents) {
	gemmExt32(nil, serial, ta, tb, m, n, k, a, b, beta, c, e)
}

// gemmExt32 is GemmExtF32Of with kn's kernel (nil: pickKernel's).
func gemmExt32[A, B Float](kn *kernelInfo, serial, ta, tb bool, m, n, k int, a []A, b []B, beta float64, c []float64, e *Extents) {
	if !prepare(m, n, k, 1, a, b, beta, c) {
		return
	}
	e.check(n, k)
	j := extJob[A, B]{ta: ta, tb: tb, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c, e: e}
	j.kn = kn
	if kn == nil {
		j.kn = pickKernel(m, n, true)
	}
	nr := j.kn.nr32
	np := blocks(n, nr)
	bp := b32Pool.Get().(*[]float32)
	defer b32Pool.Put(bp)
	if need := np * nr * k; cap(*bp) < need {
		*bp = make([]float32, need)
	}
	j.pb32 = (*bp)[:np*nr*k]
	for q := range np {
		c0 := q * nr
		dst := j.pb32[q*nr*k : (q+1)*nr*k]
		if tb {
			packStrided32(dst, nr, b, k, c0, min(nr, n-c0), 0, k)
		} else {
			packContig32(dst, nr, b, n, c0, min(nr, n-c0), 0, k)
		}
	}
	j.run(serial, true)
}

// extJob is one GemmExt or GemmExtF32Of call.
type extJob[A, B Float] struct {
	kn      *kernelInfo
	ta, tb  bool
	m, n, k int
	a       []A
	b       []B
	beta    float64
	c       []float64
	e       *Extents
	direct  bool      // float64: full A panels read in place (see job.direct)
	pb      []float64 // float64: packed panels of op(b) (all when tb, else the last partial one)
	p16     []float64 // float64: op(b) in a Packed's panels of packedWidth columns, when not nil (MulExt)
	p64     []float64 // the same in a Packed's panels of 64 columns, for the row kernel
	rowOff  int       // the first row of a and c is row rowOff of the product e describes
	pb32    []float32 // float32: every panel of op(b), packed
}

// extChunk is the rows of c one task computes: a multiple of every MR.
func extChunk(m int) int {
	if m < 384 {
		return 48
	}
	return mcMax
}

// run computes the row chunks, in float32 when f32, in parallel unless
// serial or small (then without allocating: only the parallel branch's
// copy of the job escapes).
func (j *extJob[A, B]) run(serial, f32 bool) {
	chunks := blocks(j.m, extChunk(j.m))
	if serial || j.m*j.n*j.k < parallelMACs {
		w := workPool.Get().(*workBuf)
		for t := range chunks {
			j.chunk(t, f32, w)
		}
		workPool.Put(w)
		return
	}
	jc := *j
	Parallel(chunks, func(t int) {
		w := workPool.Get().(*workBuf)
		jc.chunk(t, f32, w)
		workPool.Put(w)
	})
}

// chunk computes row chunk t.
func (j *extJob[A, B]) chunk(t int, f32 bool, w *workBuf) {
	ch := extChunk(j.m)
	i0, i1 := t*ch, min((t+1)*ch, j.m)
	j.task(i0, i1, w, f32)
}

// blockRange returns the k steps [s, e) of group g in the k-block [p0, p1),
// and whether that is the first block of the group's range (beta applies).
func (j *extJob[A, B]) blockRange(g, p0, p1 int) (s, e int, first bool) {
	lo := j.e.KLo[g]
	return max(p0, lo), min(p1, j.e.KHi[g]), lo >= p0
}

// union returns the k steps of the k-block [p0, p1) that some group needs
// on rows from i0, and the last such row (bounded by i1).
func (j *extJob[A, B]) union(p0, p1, i0, i1 int) (lo, hi, r1 int) {
	lo, hi = p1, p0
	for g := range j.e.KLo {
		s, e, _ := j.blockRange(g, p0, p1)
		if s < e && j.rows(g) > i0 {
			lo, hi, r1 = min(lo, s), max(hi, e), max(r1, min(i1, j.rows(g)))
		}
	}
	return lo, hi, r1
}

// scaleEmpty sets c = beta·c on rows [i0, i1) of the groups with no k steps.
func (j *extJob[A, B]) scaleEmpty(i0, i1 int) {
	for g := range j.e.KLo {
		if j.e.KLo[g] < min(j.e.KHi[g], j.k) {
			continue
		}
		c0, c1 := g*ExtentCols, min((g+1)*ExtentCols, j.n)
		for i := i0; i < min(i1, j.rows(g)); i++ {
			scale(j.c[i*j.n+c0:i*j.n+c1], j.beta)
		}
	}
}

// packB64 packs the panels of op(b) that are not read in place into *bp.
func (j *extJob[A, B]) packB64(bp *[]float64) {
	nr, n, k := j.kn.nr, j.n, j.k
	b := any(j.b).([]float64)
	np := blocks(n, nr)
	if !j.tb && n%nr == 0 {
		return
	}
	if cap(*bp) < np*nr*k {
		*bp = make([]float64, np*nr*k)
	}
	j.pb = (*bp)[:np*nr*k]
	for q := range np {
		c0 := q * nr
		if j.tb {
			packStrided(j.pb[q*nr*k:(q+1)*nr*k], nr, b, k, c0, min(nr, n-c0), 0, k)
		} else if q == np-1 {
			packContig(j.pb[q*nr*k:(q+1)*nr*k], nr, b, n, c0, n-c0, 0, k)
		}
	}
}

// bPanel64 returns steps [s, e) of B panel q and their stride.
func (j *extJob[A, B]) bPanel64(q, s, e int) ([]float64, int) {
	nr := j.kn.nr
	if j.p64 != nil && nr > packedWidth {
		off := q*nr*j.k + s*nr
		return j.p64[off : off+(e-s)*nr], nr
	}
	if j.p16 != nil {
		q16, o := q*nr/packedWidth, q*nr%packedWidth
		off := q16*packedWidth*j.k + s*packedWidth + o
		return j.p16[off : off+(e-s-1)*packedWidth+nr], packedWidth
	}
	if !j.tb && (q+1)*nr <= j.n {
		b := any(j.b).([]float64)
		off := s*j.n + q*nr
		return b[off : off+(e-s-1)*j.n+nr], j.n
	}
	off := q*nr*j.k + s*nr
	return j.pb[off : off+(e-s)*nr], nr
}

// rows returns how many of the job's rows group g needs.
func (j *extJob[A, B]) rows(g int) int { return j.e.Rows[g] - j.rowOff }

// kc returns Gemm's k-block length for k.
func (j *extJob[A, B]) kc() int { return blocks(j.k, blocks(j.k, kcMax)) }

// task computes rows [i0, i1) of c, in float32 when f32: per k-block, the
// A panels of the steps some group needs, then each group's tiles on its
// own steps.
func (j *extJob[A, B]) task(i0, i1 int, w *workBuf, f32 bool) {
	mr, nr := j.kn.mr, j.kn.nr
	if f32 {
		mr, nr = j.kn.mr32, j.kn.nr32
	}
	kc := j.kc()
	for p0 := 0; p0 < j.k; p0 += kc {
		p1 := min(p0+kc, j.k)
		lo, hi, r1 := j.union(p0, p1, i0, i1)
		if lo >= hi {
			continue
		}
		kw := hi - lo
		j.packA(w, i0, r1, lo, kw, mr, f32)
		for g := range j.e.KLo {
			s, e, first := j.blockRange(g, p0, p1)
			gr1 := min(r1, j.rows(g))
			if s >= e || gr1 <= i0 {
				continue
			}
			beta := 1.0
			if first {
				beta = j.beta
			}
			for c0 := g * ExtentCols; c0 < min((g+1)*ExtentCols, j.n); c0 += nr {
				p0 := c0 / nr * nr // the panel: c0 unless it is wider than a group (the row kernel's)
				for i := i0; i < gr1; i += mr {
					j.tile(w, i, p0, c0, min(mr, gr1-i), mr, nr, beta, func(c []float64, ldc int) {
						if f32 {
							off := (i-i0)*kw + (s-lo)*mr
							bp := j.pb32[c0*j.k+s*nr : c0*j.k+e*nr]
							j.kn.fn32(e-s, w.pa32[off:off+(e-s)*mr], bp, c, ldc, 1, beta)
							return
						}
						ap, lda, adk := j.aPanel64(w, i, i0, r1, s, e, lo, kw)
						bp, ldb := j.bPanel64(p0/nr, s, e)
						j.kn.fn(e-s, ap, lda, adk, bp, ldb, c, ldc, 1, beta)
					})
				}
			}
		}
	}
	j.scaleEmpty(i0, i1)
}

// packA packs the A panels of rows [i0, r1) (MR rows each, from i0) for
// the k steps [lo, lo+kw) into w: every panel in float32, else those not
// read in place (see aPanel64).
func (j *extJob[A, B]) packA(w *workBuf, i0, r1, lo, kw, mr int, f32 bool) {
	for i := i0; i < r1; i += mr {
		rows := min(mr, r1-i)
		switch {
		case f32 && j.ta:
			packContig32(w.pa32[(i-i0)*kw:(i-i0+mr)*kw], mr, j.a, j.m, i, rows, lo, kw)
		case f32:
			packStrided32(w.pa32[(i-i0)*kw:(i-i0+mr)*kw], mr, j.a, j.k, i, rows, lo, kw)
		case rows == mr && j.direct:
		case j.ta:
			packContig(w.pa[(i-i0)*kw:(i-i0+mr)*kw], mr, any(j.a).([]float64), j.m, i, rows, lo, kw)
		default:
			packStrided(w.pa[(i-i0)*kw:(i-i0+mr)*kw], mr, any(j.a).([]float64), j.k, i, rows, lo, kw)
		}
	}
}

// aPanel64 returns the float64 A panel of the MR rows from i for the k
// steps [s, e), and its strides: in place in a when the panel is whole and
// read directly (see job.direct), else packed by packA (steps [lo, lo+kw)
// of the rows [i0, r1)).
func (j *extJob[A, B]) aPanel64(w *workBuf, i, i0, r1, s, e, lo, kw int) ([]float64, int, int) {
	mr := j.kn.mr
	a := any(j.a).([]float64)
	ap, lda, adk := w.pa[(i-i0)*kw+(s-lo)*mr:], 1, mr
	switch {
	case min(mr, r1-i) < mr || !j.direct:
	case j.ta:
		ap, lda, adk = a[s*j.m+i:], 1, j.m
	default:
		ap, lda, adk = a[i*j.k+s:], j.k, 1
	}
	return ap[:(mr-1)*lda+(e-s-1)*adk+1], lda, adk
}

// tile runs kernel on the tile of c at row i of the panel from column p0,
// for the columns from c0 (p0, or, for a panel wider than a group, the
// group's first) to the end of the panel, its group or c, whichever is
// first: in place when that is the whole tile, else on a padded copy in
// w.tile of which only those columns are copied back.
func (j *extJob[A, B]) tile(w *workBuf, i, p0, c0, rows, mr, nr int, beta float64, kernel func(c []float64, ldc int)) {
	n := j.n
	c1 := min(p0+nr, c0/ExtentCols*ExtentCols+ExtentCols, n)
	if rows == mr && p0 == c0 && c1 == p0+nr {
		off := i*n + p0
		kernel(j.c[off:off+(mr-1)*n+nr], n)
		return
	}
	t := w.tile[:mr*nr]
	if beta != 0 {
		for r := range rows {
			copy(t[r*nr+c0-p0:r*nr+c1-p0], j.c[(i+r)*n+c0:(i+r)*n+c1])
		}
	}
	kernel(t, nr)
	for r := range rows {
		copy(j.c[(i+r)*n+c0:(i+r)*n+c1], t[r*nr+c0-p0:r*nr+c1-p0])
	}
}
