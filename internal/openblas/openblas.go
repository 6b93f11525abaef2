//go:build openblas && cgo

package openblas

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// Gemm computes c = alpha·op(a)·op(b) + beta·c with linalg.Gemm's row-major
// conventions, on OpenBLAS. m, n and k are positive and alpha is not zero
// (linalg.Gemm handles the degenerate cases itself).
func Gemm(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	lda, ldb := k, n
	transA, transB := blas.NoTrans, blas.NoTrans
	if ta {
		lda, transA = m, blas.Trans
	}
	if tb {
		ldb, transB = k, blas.Trans
	}
	netlib.Implementation{}.Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, n)
}
