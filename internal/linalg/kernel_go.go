package linalg

import "math"

// goKernel is the portable micro-kernel, used where no assembly kernel runs.
var goKernel = &kernelInfo{name: "go", mr: 4, nr: 4, fn: kernel4x4Go, mr32: 4, nr32: 4, fn32: kernel4x4GoF32}

// kernel4x4Go computes a 4×4 tile of c (step p reads a[i·lda+p·adk] for
// i < 4 and b[p·ldb:p·ldb+4]) with the same contract as the assembly kernels: 16
// accumulators in locals, one multiply-add per element per k step in
// increasing order, then c = alpha·acc + beta·c, not reading c when beta is 0.
// Every multiply-add is an explicit math.FMA in the assembly kernels' order
// (acc = fma(a, b, acc); c = fma(alpha, acc, beta·c)), so the result is
// bit-identical to theirs on every architecture: math.FMA is exact by
// definition, in hardware where the CPU has FMA and in software where not.
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
		c00 = math.FMA(a0, b0, c00)
		c01 = math.FMA(a0, b1, c01)
		c02 = math.FMA(a0, b2, c02)
		c03 = math.FMA(a0, b3, c03)
		c10 = math.FMA(a1, b0, c10)
		c11 = math.FMA(a1, b1, c11)
		c12 = math.FMA(a1, b2, c12)
		c13 = math.FMA(a1, b3, c13)
		c20 = math.FMA(a2, b0, c20)
		c21 = math.FMA(a2, b1, c21)
		c22 = math.FMA(a2, b2, c22)
		c23 = math.FMA(a2, b3, c23)
		c30 = math.FMA(a3, b0, c30)
		c31 = math.FMA(a3, b1, c31)
		c32 = math.FMA(a3, b2, c32)
		c33 = math.FMA(a3, b3, c33)
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
	r[0] = math.FMA(alpha, x0, beta*r[0])
	r[1] = math.FMA(alpha, x1, beta*r[1])
	r[2] = math.FMA(alpha, x2, beta*r[2])
	r[3] = math.FMA(alpha, x3, beta*r[3])
}
