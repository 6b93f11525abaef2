package linalg

// Products with a fixed, packed right-hand side (Packed, Packed32) that
// skip its known zero blocks (Extents): a prepared MADE's masked weights
// with sorted degrees (see extents.go).

// MulExt sets c = a·B + beta·c (beta 0: c not read, as Mul; 1: as
// MulAdd), with a m×k and c m×n (row-major, contiguous), on the calling
// goroutine, computing only the part e says is needed (B zero outside it,
// see Extents): Mul's and MulAdd's bits, Gemm's, except a −0 in c that
// Gemm would turn into +0 (see extents.go).
func MulExt(pb *Packed, m int, a []float64, beta float64, c []float64, e *Extents) {
	if !prepare(m, pb.n, pb.k, 1, a, pb.p16, beta, c) {
		return
	}
	e.check(pb.n, pb.k)
	// As MulAdd: whole tiles of the kernel that pads m rows least, then
	// the rest on the one that pads those least.
	kn := pb.kernel(m)
	whole := m / kn.mr * kn.mr
	pb.mulExt(kn, 0, whole, a, beta, c, e)
	if whole < m {
		pb.mulExt(pb.kernel(m-whole), whole, m-whole, a[whole*pb.k:], beta, c[whole*pb.n:], e)
	}
}

// mulExt is MulExt on kernel kn for the m rows of a and c from row r0 of
// the product.
func (pb *Packed) mulExt(kn *kernelInfo, r0, m int, a []float64, beta float64, c []float64, e *Extents) {
	if m == 0 {
		return
	}
	j := extJob[float64, float64]{kn: kn, m: m, n: pb.n, k: pb.k, a: a, beta: beta, c: c, e: e, p16: pb.p16, p64: pb.p64, rowOff: r0}
	j.direct = !nearMultiple4K(pb.k * 8)
	j.run(true, false)
}

// MulExt32 sets c = a·B + beta·c (beta 0 or 1) as GemmF32Of does, with
// a m×k (float32 or float64) and c m×n, on the calling goroutine,
// computing only the part e says is needed: MulAdd32's bits with beta 1,
// GemmF32Of's, except a −0 in c.
func MulExt32[A Float](pb *Packed32, m int, a []A, beta float64, c []float64, e *Extents) {
	if !prepare(m, pb.n, pb.k, 1, a, pb.p, beta, c) {
		return
	}
	e.check(pb.n, pb.k)
	j := extJob[A, float32]{kn: pb.kn, m: m, n: pb.n, k: pb.k, a: a, beta: beta, c: c, e: e, pb32: pb.p}
	j.run(true, true)
}

// NonEmpty reports whether every group of e has k steps, of a product of k
// steps: then a product with beta 0 followed by c += b is the product on
// c = b, bit for bit, with one k-block (Packed.OneBlock), as for Mul.
func (e *Extents) NonEmpty(k int) bool {
	for g, lo := range e.KLo {
		if lo >= min(e.KHi[g], k) {
			return false
		}
	}
	return true
}
