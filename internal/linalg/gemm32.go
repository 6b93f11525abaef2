package linalg

// The float32 product (GemmF32): the float64 product's blocking and
// parallelism (gemm.go: the same plan, tasks, packing units and helpers),
// with float32 panels and kernels.
//
// Panels: every panel is packed, and packing converts: each element of
// op(a) and op(b) is rounded to float32 once, as it is copied (packing
// touches every element anyway). op(b) is packed once per call by the
// packing units, whether b is stored transposed or not; each task packs its
// A panels per k-block.
//
// Arithmetic, per element of c and per k-block (the float64 product's
// k-blocks, which depend only on k): acc = fma(a, b, acc) in float32, one
// fused multiply-add per step in increasing p, from zero; then, in float64,
// c = alpha·acc (beta' = 0: c is not read) or fma(alpha, acc, beta'·c), acc
// widened exactly, beta' the caller's beta for the first k-block and 1 for
// later ones. So c stays float64, and the rounding to float32 is that of
// the inputs and of at most kcMax = 256 steps of the sum.
//
// Determinism: the AVX-512 (12×32), AVX2 (6×16) and Go (4×4) kernels and
// the small path do that arithmetic, FMA for FMA (the Go ones with fma32,
// an exactly rounded float32 fused multiply-add), so the result is
// bit-identical for any kernel, any number of workers, any GOMAXPROCS and
// any number of other rows or columns in the product.

import (
	"math"
	"runtime"
)

// microKernel32 computes one MR×NR tile in float32 from packed panels:
// step p reads a[p·MR : p·MR+MR] and b[p·NR : p·NR+NR]; c (float64) holds
// the tile at row stride ldc. See gen32 in asm/asm.go for the contract.
type microKernel32 func(k int, a []float32, b []float32, c []float64, ldc int, alpha, beta float64)

// GemmF32 is Gemm computed in float32: the elements of op(a) and op(b) are
// rounded to float32, their products summed in float32 (with fused
// multiply-adds, in blocks of at most 256 steps of k), and each block's sum
// is added into c in float64 as c = alpha·sum + beta·c. c stays float64.
//
// Its error against the exact product is within about (k' + 2)·2⁻²⁴ of
// Σ_p |op(a)_ip·op(b)_pj| (k' = min(k, 256), the longest block) plus a
// float64 rounding, against k·2⁻⁵³ for Gemm. Like Gemm's, its result is
// bit-identical for any number of workers, any GOMAXPROCS, any kernel
// (AVX-512, AVX2 or the portable one) and any number of other rows or
// columns in the product. The openblas build runs it on this package's
// kernels too.
func GemmF32(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	gemm32(nil, ta, tb, m, n, k, alpha, a, b, beta, c, Workers())
}

// GemmSerialF32 is GemmF32 computed on the calling goroutine alone; its
// result is bit-identical to GemmF32's.
func GemmSerialF32(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	gemm32(nil, ta, tb, m, n, k, alpha, a, b, beta, c, 1)
}

// Float is an element type of GemmF32Of's operands.
type Float interface{ float32 | float64 }

// GemmF32Of is GemmF32 with operands of either element type: a float32
// operand is packed as it is (a copy, half the bytes of a float64 one to
// read), a float64 one rounded to float32 as GemmF32 does. Since GemmF32
// rounds every element to float32 first, GemmF32Of on float32(a) and
// float32(b) gives exactly GemmF32's bits on a and b.
func GemmF32Of[A, B Float](ta, tb bool, m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64) {
	gemm32(nil, ta, tb, m, n, k, alpha, a, b, beta, c, Workers())
}

// GemmSerialF32Of is GemmF32Of on the calling goroutine alone, with the
// same bits.
func GemmSerialF32Of[A, B Float](ta, tb bool, m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64) {
	gemm32(nil, ta, tb, m, n, k, alpha, a, b, beta, c, 1)
}

// operands32 sets j's operands to a and b: j.a, j.b for float64 ones,
// j.a32, j.b32 for float32 ones (the others nil).
func operands32[A, B Float](j *job, a []A, b []B) {
	j.a, j.b, j.a32, j.b32 = nil, nil, nil, nil
	switch a := any(a).(type) {
	case []float64:
		j.a = a
	case []float32:
		j.a32 = a
	}
	switch b := any(b).(type) {
	case []float64:
		j.b = b
	case []float32:
		j.b32 = b
	}
}

// smallMACs32 is the most multiply-adds GemmF32 computes element by element
// (small32) rather than tiled: the portable fused multiply-add costs a few
// nanoseconds, so only the tiniest products skip the assembly kernels.
const smallMACs32 = 1 << 9

// gemm32 is GemmF32 with kn's float32 micro-kernel (nil: the one
// pickKernel chooses) on at most workers goroutines.
func gemm32[A, B Float](kn *kernelInfo, ta, tb bool, m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64, workers int) {
	if !prepare(m, n, k, alpha, a, b, beta, c) {
		return
	}
	c = c[:m*n]
	if kn == nil {
		if m*n*k <= smallMACs32 {
			small32(ta, tb, m, n, k, alpha, a, b, beta, c)
			return
		}
		kn = pickKernel(m, n, true)
	}
	j := jobPool.Get().(*job)
	j.kn, j.ta, j.tb, j.m, j.n, j.k = kn, ta, tb, m, n, k
	j.alpha, j.beta, j.c = alpha, beta, c
	operands32(j, a[:m*k], b[:k*n])
	j.f32 = true
	j.p = makePlan(kn.mr32, kn.nr32, true, m, n, k)
	j.reset()
	bp := b32Pool.Get().(*[]float32)
	if need := j.p.np * kn.nr32 * k; cap(*bp) < need {
		*bp = make([]float32, need)
	}
	j.pb32 = (*bp)[:j.p.np*kn.nr32*k]
	j.runWith(workers)
	j.a, j.b, j.a32, j.b32, j.c, j.pb32, j.f32 = nil, nil, nil, nil, nil, nil, false
	jobPool.Put(j)
	b32Pool.Put(bp)
}

// packUnit32 packs unit t of op(b), converted to float32: micro-panels
// [q0, q1) of one column block, all k rows (panel q holds op(b)[p][q·NR+j]
// at q·NR·k + p·NR + j).
func (j *job) packUnit32(t int) {
	nr := j.kn.nr32
	jb, q0, q1 := j.p.unit(t)
	for q := q0; q < q1; q++ {
		c0 := q * nr
		dst := j.pb32[q*nr*j.k : (q+1)*nr*j.k]
		switch {
		case j.tb && j.b32 != nil: // b is n×k: column c of op(b) is row c of b
			packStrided32(dst, nr, j.b32, j.k, c0, min(nr, j.n-c0), 0, j.k)
		case j.tb:
			packStrided32(dst, nr, j.b, j.k, c0, min(nr, j.n-c0), 0, j.k)
		case j.b32 != nil:
			packContig32(dst, nr, j.b32, j.n, c0, min(nr, j.n-c0), 0, j.k)
		default:
			packContig32(dst, nr, j.b, j.n, c0, min(nr, j.n-c0), 0, j.k)
		}
	}
	j.packed[jb].Add(1)
}

// task32 computes block t of c in float32, as task does in float64, with
// every A panel packed.
func (j *job) task32(t int, w *workBuf) {
	p, kn := &j.p, j.kn
	mr, nr := kn.mr32, kn.nr32
	jb, ib := t/p.mb, t%p.mb
	i0, i1 := p.rowBlock(ib, mr, j.m)
	q0, q1 := p.colPanels(jb)
	j0 := q0 * nr
	mcur, ncur := i1-i0, min(q1*nr, j.n)-j0
	mpan := blocks(mcur, mr)
	n := j.n

	for kb := range p.nkb {
		p0 := kb * p.kc
		kcur := min(p.kc, j.k-p0)
		for r := range mpan {
			rows := min(mr, mcur-r*mr)
			dst := w.pa32[r*mr*kcur : (r+1)*mr*kcur]
			switch {
			case j.ta && j.a32 != nil:
				packContig32(dst, mr, j.a32, j.m, i0+r*mr, rows, p0, kcur)
			case j.ta:
				packContig32(dst, mr, j.a, j.m, i0+r*mr, rows, p0, kcur)
			case j.a32 != nil:
				packStrided32(dst, mr, j.a32, j.k, i0+r*mr, rows, p0, kcur)
			default:
				packStrided32(dst, mr, j.a, j.k, i0+r*mr, rows, p0, kcur)
			}
		}
		if kb == 0 {
			for want := int32(p.upb); j.packed[jb].Load() < want; {
				runtime.Gosched()
			}
		}
		beta := j.beta
		if kb > 0 {
			beta = 1
		}
		for jr := 0; jr < ncur; jr += nr {
			cols := min(nr, ncur-jr)
			off := (j0+jr)*j.k + p0*nr // panel (j0+jr)/nr, step p0
			bp := j.pb32[off : off+kcur*nr]
			for r := range mpan {
				rows := min(mr, mcur-r*mr)
				ap := w.pa32[r*mr*kcur : (r+1)*mr*kcur]
				off := (i0+r*mr)*n + j0 + jr
				if rows == mr && cols == nr {
					kn.fn32(kcur, ap, bp, j.c[off:off+(mr-1)*n+nr], n, j.alpha, beta)
					continue
				}
				tile := w.tile[:mr*nr]
				if beta != 0 {
					for i := range rows {
						copy(tile[i*nr:i*nr+cols], j.c[off+i*n:off+i*n+cols])
					}
				}
				kn.fn32(kcur, ap, bp, tile, nr, j.alpha, beta)
				for i := range rows {
					copy(j.c[off+i*n:off+i*n+cols], tile[i*nr:i*nr+cols])
				}
			}
		}
	}
}

// packContig32 is packContig converting to float32: dst[p·w+i] =
// src[(p0+p)·ld + r0+i] for i < rows, zero for rows ≤ i < w.
func packContig32[S Float](dst []float32, w int, src []S, ld, r0, rows, p0, np int) {
	dst = dst[:np*w]
	src = src[p0*ld+r0:]
	if s64, ok := any(src).([]float64); ok && hasConvert && np > 0 {
		_ = s64[(np-1)*ld+rows-1] // the assembly reads no further
		convertPanel(dst, w, s64, ld, rows, np)
		if rows < w {
			for p := range np {
				clear(dst[p*w+rows : p*w+w])
			}
		}
		return
	}
	s32, is32 := any(src).([]float32)
	if is32 && rows == w && copyPanel32(dst, w, s32, ld, np) {
		return
	}
	for p := range np {
		d := dst[p*w : p*w+w]
		if is32 { // a copy: memmove's wide loads, not a loop of conversions
			copy(d[:rows], s32[p*ld:p*ld+rows])
		} else {
			for i, v := range src[p*ld : p*ld+rows] {
				d[i] = float32(v)
			}
		}
		clear(d[rows:])
	}
}

// copyPanel32 sets dst[p·w+i] = src[p·ld+i] for i < w, p < np, for the
// kernels' panel widths (else it reports false): one fixed-size array
// assignment a step, a few vector moves, where copy's call to memmove
// cost more than the move itself.
func copyPanel32(dst []float32, w int, src []float32, ld, np int) bool {
	dst = dst[:np*w]
	switch w {
	case 32:
		for p := range np {
			*(*[32]float32)(dst[p*32:]) = *(*[32]float32)(src[p*ld:])
		}
	case 16:
		for p := range np {
			*(*[16]float32)(dst[p*16:]) = *(*[16]float32)(src[p*ld:])
		}
	case 12:
		for p := range np {
			*(*[12]float32)(dst[p*12:]) = *(*[12]float32)(src[p*ld:])
		}
	case 6:
		for p := range np {
			*(*[6]float32)(dst[p*6:]) = *(*[6]float32)(src[p*ld:])
		}
	case 4:
		for p := range np {
			*(*[4]float32)(dst[p*4:]) = *(*[4]float32)(src[p*ld:])
		}
	default:
		return false
	}
	return true
}

// packStrided32 is packStrided converting to float32: dst[p·w+i] =
// src[(r0+i)·ld + p0+p] for i < rows, zero for rows ≤ i < w.
func packStrided32[S Float](dst []float32, w int, src []S, ld, r0, rows, p0, np int) {
	dst = dst[:np*w]
	i := 0
	for ; i+4 <= rows; i += 4 {
		s0 := src[(r0+i)*ld+p0 : (r0+i)*ld+p0+np]
		s1 := src[(r0+i+1)*ld+p0 : (r0+i+1)*ld+p0+np]
		s2 := src[(r0+i+2)*ld+p0 : (r0+i+2)*ld+p0+np]
		s3 := src[(r0+i+3)*ld+p0 : (r0+i+3)*ld+p0+np]
		s1, s2, s3 = s1[:len(s0)], s2[:len(s0)], s3[:len(s0)]
		for p, v := range s0 {
			d := (*[4]float32)(dst[p*w+i:])
			d[0], d[1], d[2], d[3] = float32(v), float32(s1[p]), float32(s2[p]), float32(s3[p])
		}
	}
	for ; i < rows; i++ {
		s := src[(r0+i)*ld+p0 : (r0+i)*ld+p0+np]
		for p, v := range s {
			dst[p*w+i] = float32(v)
		}
	}
	if rows < w {
		for p := range np {
			clear(dst[p*w+rows : p*w+w])
		}
	}
}

// small32 is small in float32: the kernels' arithmetic element by element.
func small32[A, B Float](ta, tb bool, m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64) {
	ai, ap := k, 1
	if ta {
		ai, ap = 1, m
	}
	bp, bj := n, 1
	if tb {
		bp, bj = 1, k
	}
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	for p0 := 0; p0 < k; p0 += kc {
		p1 := min(p0+kc, k)
		bt := beta
		if p0 > 0 {
			bt = 1
		}
		for i := range m {
			ar := a[i*ai:]
			for j := range n {
				var s float32
				bc := b[j*bj:]
				for p := p0; p < p1; p++ {
					s = fma32(float32(ar[p*ap]), float32(bc[p*bp]), s)
				}
				update(c[i*n+j:], float64(s), alpha, bt)
			}
		}
	}
}

// fma32 returns x·y + z rounded once to float32, as the assembly kernels'
// VFMADD231PS does (round to nearest even). x·y is exact in float64 (24 +
// 24 bits); the sum is rounded to float64 "to odd" (if inexact, the
// neighbour with an odd last bit: s corrected by the error e of TwoSum),
// and a value rounded to odd with at least two more bits than float32 then
// rounds to float32 correctly (Boldo and Melquiond, 2008). Infinities and
// NaNs give e = NaN and pass through unchanged.
func fma32(x, y, z float32) float32 {
	p := float64(float64(x) * float64(y))
	zz := float64(z)
	s := p + zz
	bb := s - p
	e := (p - (s - bb)) + (zz - bb)
	if e > 0 || e < 0 {
		if bits := math.Float64bits(s); bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++ // the exact sum is farther from zero than s
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// kernel4x4GoF32 is the portable float32 micro-kernel, a 4×4 tile with
// microKernel32's contract: acc = fma32(a, b, acc) per step, then c updated
// in float64 as update4 does. Bit-identical to the assembly kernels.
func kernel4x4GoF32(k int, a []float32, b []float32, c []float64, ldc int, alpha, beta float64) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	a, b = a[:4*k], b[:4*k]
	for p := 0; p < k; p++ {
		ap, bp := (*[4]float32)(a[4*p:]), (*[4]float32)(b[4*p:])
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00, c01, c02, c03 = fma32(a0, b0, c00), fma32(a0, b1, c01), fma32(a0, b2, c02), fma32(a0, b3, c03)
		c10, c11, c12, c13 = fma32(a1, b0, c10), fma32(a1, b1, c11), fma32(a1, b2, c12), fma32(a1, b3, c13)
		c20, c21, c22, c23 = fma32(a2, b0, c20), fma32(a2, b1, c21), fma32(a2, b2, c22), fma32(a2, b3, c23)
		c30, c31, c32, c33 = fma32(a3, b0, c30), fma32(a3, b1, c31), fma32(a3, b2, c32), fma32(a3, b3, c33)
	}
	w := func(x float32) float64 { return float64(x) }
	update4(c[0*ldc:0*ldc+4], w(c00), w(c01), w(c02), w(c03), alpha, beta)
	update4(c[1*ldc:1*ldc+4], w(c10), w(c11), w(c12), w(c13), alpha, beta)
	update4(c[2*ldc:2*ldc+4], w(c20), w(c21), w(c22), w(c23), alpha, beta)
	update4(c[3*ldc:3*ldc+4], w(c30), w(c31), w(c32), w(c33), alpha, beta)
}
