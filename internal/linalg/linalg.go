// Package linalg holds the matrix products the layers use, behind one small
// set of functions so that a faster kernel can replace gonum's later without
// touching the layers.
package linalg

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Gemm computes c = alpha·op(a)·op(b) + beta·c on row-major matrices given as
// flat slices: op(a) is m×k, op(b) is k×n and c is m×n. When ta (tb) is true,
// a (b) is stored transposed, as k×m (n×k).
func Gemm(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	if m == 0 || n == 0 {
		return
	}
	lda, ldb := k, n
	transA, transB := blas.NoTrans, blas.NoTrans
	if ta {
		lda, transA = m, blas.Trans
	}
	if tb {
		ldb, transB = k, blas.Trans
	}
	if k == 0 {
		// op(a)·op(b) is zero; gonum rejects a zero leading dimension.
		for i := range c[:m*n] {
			if beta == 0 {
				c[i] = 0 // as in BLAS, c is not read when beta is zero
			} else {
				c[i] *= beta
			}
		}
		return
	}
	blas64.Implementation().Dgemm(transA, transB, m, n, k, alpha, a, max(lda, 1), b, max(ldb, 1), beta, c, n)
}
