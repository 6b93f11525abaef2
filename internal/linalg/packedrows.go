package linalg

import "sync"

// Products with weights packed once and reused by many calls of any size:
// the products of a net whose parameters are fixed for a training step
// (package flows, frozen parameters). Packed and Packed32 run small row
// blocks on the calling goroutine; MulRows and MulRows32 split the rows
// into tasks as Gemm's plan does and share them out with Parallel, so a
// batch of a thousand rows uses every worker, and they take beta 0 as well
// as 1. The packs can be refilled in place (PackBInto, PackB32Into) and
// packed from the transpose (PackBTInto, PackBT32Into), for the pullback's
// g·Wᵀ.
//
// Bits: per element, the packed products do the arithmetic of Gemm and
// GemmF32Of (see Packed, Packed32), whichever rows a task holds, so
// MulRows(pb, m, a, beta, c) is Gemm(false, false, m, n, k, 1, a, B, beta,
// c) bit for bit, and MulRows32 is GemmF32Of's (TestMulRowsMatchGemm).
// With beta 0, c is not read (MulRows32 zeroes it and adds the sums: see
// rows32 for why that is GemmF32's c = alpha·acc bit for bit).

// PackBInto is PackB, reusing dst's storage when dst is not nil and large
// enough (dst is then overwritten and returned; it must not be in use).
func PackBInto(dst *Packed, k, n int, b []float64) *Packed {
	return packBInto(dst, k, n, b, false)
}

// PackBTInto is PackBInto for B = btᵀ, with bt n×k row-major: the
// weights of a product by the transpose of a stored matrix.
func PackBTInto(dst *Packed, k, n int, bt []float64) *Packed {
	return packBInto(dst, k, n, bt, true)
}

// packBInto is PackBInto (from bt = bᵀ when trans).
func packBInto(dst *Packed, k, n int, b []float64, trans bool) *Packed {
	if k < 1 || n < 1 || len(b) < k*n {
		panic("linalg: PackBInto: bad shape")
	}
	if dst == nil {
		dst = new(Packed)
	}
	dst.k, dst.n = k, n
	dst.p16 = panelsInto(dst.p16, k, n, b, packedWidth, trans)
	if rowKernelUsable() {
		dst.p64 = panelsInto(dst.p64, k, n, b, 64, trans)
	} else {
		dst.p64 = nil
	}
	return dst
}

// panelsInto is packPanels into dst's storage when it is large enough
// (from bt = bᵀ, n×k, when trans).
func panelsInto(dst []float64, k, n int, b []float64, w int, trans bool) []float64 {
	np := blocks(n, w)
	if cap(dst) < np*w*k {
		dst = make([]float64, np*w*k)
	}
	dst = dst[:np*w*k]
	for q := range np {
		c0 := q * w
		if trans {
			packStrided(dst[q*w*k:(q+1)*w*k], w, b, k, c0, min(w, n-c0), 0, k)
		} else {
			packContig(dst[q*w*k:(q+1)*w*k], w, b, n, c0, min(w, n-c0), 0, k)
		}
	}
	return dst
}

// PackB32Into is PackB32, reusing dst's storage when dst is not nil and
// large enough (dst is then overwritten and returned; it must not be in
// use). The panels are those of the kernel GemmF32 picks for n columns
// and many rows: a narrow B (n ≤ 16) takes the AVX2 kernel's 16 columns
// rather than AVX-512's 32, on a CPU that has both (pickKernel).
func PackB32Into(dst *Packed32, k, n int, b []float64) *Packed32 {
	return packB32Into(pickKernel(mcMax, n, true), dst, k, n, b, false)
}

// PackBT32Into is PackB32Into for B = btᵀ, with bt n×k row-major.
func PackBT32Into(dst *Packed32, k, n int, bt []float64) *Packed32 {
	return packB32Into(pickKernel(mcMax, n, true), dst, k, n, bt, true)
}

// packB32Into is PackB32Into for the kernel kn (from bt = bᵀ when trans).
func packB32Into(kn *kernelInfo, dst *Packed32, k, n int, b []float64, trans bool) *Packed32 {
	if k < 1 || n < 1 || len(b) < k*n {
		panic("linalg: PackB32Into: bad shape")
	}
	if dst == nil {
		dst = new(Packed32)
	}
	nr := kn.nr32
	np := blocks(n, nr)
	if cap(dst.p) < np*nr*k {
		dst.p = make([]float32, np*nr*k)
	}
	dst.k, dst.n, dst.kn, dst.p = k, n, kn, dst.p[:np*nr*k]
	for q := range np {
		c0 := q * nr
		d := dst.p[q*nr*k : (q+1)*nr*k]
		if trans {
			packStrided32(d, nr, b, k, c0, min(nr, n-c0), 0, k)
		} else {
			packContig32(d, nr, b, n, c0, min(nr, n-c0), 0, k)
		}
	}
	return dst
}

// rowsPerTask is how many rows of an m×n·k product one task of MulRows
// takes (a multiple of mr, or m): all of them for at most mcMax rows (one
// task's block of Gemm's plan; the 128-row chunks of a training step,
// which run in parallel already), below parallelMACs or with one worker,
// else row blocks of at most mcMax, split further as makePlan splits rows,
// down to minTasks blocks of at least minTaskMACs.
func rowsPerTask(m, n, k, mr int) int {
	macs := m * n * k
	if m <= mcMax || macs < parallelMACs || Workers() < 2 {
		return m
	}
	mp := blocks(m, mr)
	mb := blocks(mp, mcMax/mr)
	for mb < minTasks && mb < mp && macs/(mb+1) >= minTaskMACs {
		mb++
	}
	return blocks(mp, mb) * mr
}

// checkRows panics unless beta is 0 or 1 and a (m×k) and c (m×n) are
// long enough.
func checkRows(who string, m, k, n, la, lc int, beta float64) {
	if beta != 0 && beta != 1 {
		panic("linalg: " + who + ": beta must be 0 or 1")
	}
	if la < m*k || lc < m*n {
		panic("linalg: " + who + ": short slice")
	}
}

// MulRows sets c = a·B + beta·c, with a m×k and c m×n (row-major,
// contiguous) and beta 0 (c not read) or 1, in row tasks on up to Workers()
// goroutines: bit for bit Gemm(false, false, m, n, k, 1, a, B, beta, c).
func MulRows(pb *Packed, m int, a []float64, beta float64, c []float64) {
	k, n := pb.k, pb.n
	checkRows("MulRows", m, k, n, len(a), len(c), beta)
	per := rowsPerTask(m, n, k, defaultKernel.mr)
	if per >= m {
		pb.mul(m, a, beta, c)
		return
	}
	j, _ := rowsPool.Get().(*rowsJob)
	if j == nil {
		j = new(rowsJob)
		j.fn = j.task
	}
	j.pb, j.m, j.per, j.a, j.beta, j.c = pb, m, per, a, beta, c
	Parallel(blocks(m, per), j.fn)
	j.pb, j.a, j.c = nil, nil, nil
	rowsPool.Put(j)
}

// MulRowsSerial is MulRows on the calling goroutine alone, for callers
// that already run products in parallel; the same bits.
func MulRowsSerial(pb *Packed, m int, a []float64, beta float64, c []float64) {
	checkRows("MulRowsSerial", m, pb.k, pb.n, len(a), len(c), beta)
	pb.mul(m, a, beta, c)
}

// MulRowsSerial32 is MulRows32 on the calling goroutine alone; the same
// bits.
func MulRowsSerial32[A Float](pb *Packed32, m int, a []A, beta float64, c []float64) {
	checkRows("MulRowsSerial32", m, pb.k, pb.n, len(a), len(c), beta)
	rows32(pb, 0, m, a, beta, c)
}

// rowsJob is one MulRows call's row tasks, pooled with its task function
// bound once, so that a call allocates nothing.
type rowsJob struct {
	pb     *Packed
	m, per int
	a, c   []float64
	beta   float64
	fn     func(t int) // task, bound
}

// task computes row task t.
func (j *rowsJob) task(t int) {
	k, n := j.pb.k, j.pb.n
	i0, i1 := t*j.per, min((t+1)*j.per, j.m)
	j.pb.mul(i1-i0, j.a[i0*k:i1*k], j.beta, j.c[i0*n:i1*n])
}

// rows32Job is one MulRows32 call's row tasks, pooled like rowsJob.
type rows32Job[A Float] struct {
	pb     *Packed32
	m, per int
	a      []A
	beta   float64
	c      []float64
	fn     func(t int) // task, bound
}

// task computes row task t.
func (j *rows32Job[A]) task(t int) {
	rows32(j.pb, t*j.per, min((t+1)*j.per, j.m), j.a, j.beta, j.c)
}

// The pools of rowsJob, and of rows32Job for float32 and float64 rows.
var rowsPool, rows32Pool32, rows32Pool64 sync.Pool

// getRows32Job returns a pooled rows32Job for rows of type A, and its pool.
func getRows32Job[A Float]() (*rows32Job[A], *sync.Pool) {
	pool := &rows32Pool64
	var zero A
	if _, ok := any(zero).(float32); ok {
		pool = &rows32Pool32
	}
	j, _ := pool.Get().(*rows32Job[A])
	if j == nil {
		j = new(rows32Job[A])
		j.fn = j.task
	}
	return j, pool
}

// MulRows32 sets c = a·B + beta·c, with a m×k (float32 or float64) and c
// m×n (float64, row-major, contiguous) and beta 0 (c not read) or 1, in
// row tasks on up to Workers() goroutines: bit for bit GemmF32Of(false,
// false, m, n, k, 1, a, B, beta, c).
func MulRows32[A Float](pb *Packed32, m int, a []A, beta float64, c []float64) {
	k, n := pb.k, pb.n
	checkRows("MulRows32", m, k, n, len(a), len(c), beta)
	per := rowsPerTask(m, n, k, pb.kn.mr32)
	if per >= m {
		rows32(pb, 0, m, a, beta, c)
		return
	}
	j, pool := getRows32Job[A]()
	j.pb, j.m, j.per, j.a, j.beta, j.c = pb, m, per, a, beta, c
	Parallel(blocks(m, per), j.fn)
	j.pb, j.a, j.c = nil, nil, nil
	pool.Put(j)
}

// rows32 computes rows [i0, i1) of MulRows32 on the calling goroutine, in
// chunks of at most mcMax rows, k-block by k-block (chunk32, which adds
// each block's sum into c: c = fma(1, acc, c)). With beta 0 the rows of c
// are zeroed first, so the first k-block stores fma(1, acc, +0) = acc,
// GemmF32's alpha·acc for alpha 1, bit for bit: every kernel starts its
// float32 sum at +0, and a sum of rounded products that starts at +0 is
// never −0 (x + y is −0 only for x = y = −0), so adding +0 changes no bit
// (a NaN passes as itself).
func rows32[A Float](pb *Packed32, i0, i1 int, a []A, beta float64, c []float64) {
	k, n := pb.k, pb.n
	if beta == 0 {
		clear(c[i0*n : i1*n])
	}
	w := workPool.Get().(*workBuf)
	defer workPool.Put(w)
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	for r0 := i0; r0 < i1; r0 += mcMax {
		r1 := min(r0+mcMax, i1)
		for p0 := 0; p0 < k; p0 += kc {
			chunk32(pb, r0, r1, p0, min(kc, k-p0), a, dest32{c: c}, nil, w)
		}
	}
}
