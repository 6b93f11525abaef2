package linalg

// Products with a fixed, packed right-hand side (Packed, Packed32) that
// skip its known zero blocks (Extents): a prepared MADE's masked weights
// with sorted degrees (see extents.go).

// MulExt sets c = a·B + c as pb.MulAdd does, with a m×k and c m×n
// (row-major, contiguous), on the calling goroutine, computing only the
// part e says is needed (B zero outside it, see Extents): MulAdd's bits,
// Gemm's, except a −0 in c that Gemm would turn into +0 (see extents.go).
func MulExt(pb *Packed, m int, a, c []float64, e *Extents) {
	if !prepare(m, pb.n, pb.k, 1, a, pb.p16, 1, c) {
		return
	}
	e.check(pb.n, pb.k)
	j := extJob[float64, float64]{m: m, n: pb.n, k: pb.k, a: a, beta: 1, c: c, e: e, p16: pb.p16}
	j.kn = pickKernel(m, pb.n, false)
	if j.kn.nr > packedWidth {
		j.kn = defaultKernel
	}
	j.direct = !nearMultiple4K(pb.k * 8)
	j.run(true, false)
}

// MulExt32 sets c = a·B + c as MulAdd32 does, with a m×k (float32 or
// float64) and c m×n, on the calling goroutine, computing only the part e
// says is needed: MulAdd32's bits, GemmF32Of's, except a −0 in c.
func MulExt32[A Float](pb *Packed32, m int, a []A, c []float64, e *Extents) {
	if !prepare(m, pb.n, pb.k, 1, a, pb.p, 1, c) {
		return
	}
	e.check(pb.n, pb.k)
	j := extJob[A, float32]{kn: pb.kn, m: m, n: pb.n, k: pb.k, a: a, beta: 1, c: c, e: e, pb32: pb.p}
	j.run(true, true)
}
