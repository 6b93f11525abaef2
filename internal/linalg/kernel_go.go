package linalg

// goKernel is the portable micro-kernel, used where no assembly kernel runs.
var goKernel = &kernelInfo{name: "go", mr: 4, nr: 4, fn: kernel4x4Go}

// kernel4x4Go computes a 4×4 tile of c (step p reads a[i·lda+p·adk] for
// i < 4 and b[p·ldb:p·ldb+4]) with the same contract as the assembly kernels: 16
// accumulators in locals, one multiply-add per element per k step in
// increasing order, then c = alpha·acc + beta·c, not reading c when beta is 0.
// (The compiler may fuse the multiply-adds where the architecture has FMA,
// as on arm64; on amd64 it does not, so results differ from the assembly
// kernels' in the last bits.)
func kernel4x4Go(k int, a []float64, lda, adk int, b []float64, ldb int, c []float64, ldc int, alpha, beta float64) {
	var c00, c01, c02, c03 float64
	var c10, c11, c12, c13 float64
	var c20, c21, c22, c23 float64
	var c30, c31, c32, c33 float64
	a0s := a[:(k-1)*adk+1]
	a1s := a[lda : lda+len(a0s)]
	a2s := a[2*lda : 2*lda+len(a0s)]
	a3s := a[3*lda : 3*lda+len(a0s)]
	for p := 0; p < k; p++ {
		bp := (*[4]float64)(b[p*ldb:])
		a0, a1, a2, a3 := a0s[p*adk], a1s[p*adk], a2s[p*adk], a3s[p*adk]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	update4(c[0*ldc:0*ldc+4], c00, c01, c02, c03, alpha, beta)
	update4(c[1*ldc:1*ldc+4], c10, c11, c12, c13, alpha, beta)
	update4(c[2*ldc:2*ldc+4], c20, c21, c22, c23, alpha, beta)
	update4(c[3*ldc:3*ldc+4], c30, c31, c32, c33, alpha, beta)
}

// update4 sets one row of a tile to alpha·acc + beta·c.
func update4(c []float64, x0, x1, x2, x3, alpha, beta float64) {
	r := (*[4]float64)(c)
	if beta == 0 {
		r[0], r[1], r[2], r[3] = alpha*x0, alpha*x1, alpha*x2, alpha*x3
		return
	}
	r[0] = alpha*x0 + beta*r[0]
	r[1] = alpha*x1 + beta*r[1]
	r[2] = alpha*x2 + beta*r[2]
	r[3] = alpha*x3 + beta*r[3]
}
