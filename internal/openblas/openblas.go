//go:build openblas && cgo

package openblas

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
//
// // flows_dgemm is cblas_dgemm on row-major matrices, with the integer
// // arguments converted by C to whatever integer type the header declares.
// static void flows_dgemm(int ta, int tb, int m, int n, int k, double alpha,
//		const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc) {
//	cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
//		m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
// }
import "C"

// Gemm computes c = alpha·op(a)·op(b) + beta·c with linalg.Gemm's row-major
// conventions, on OpenBLAS. m, n and k are positive and alpha is not zero
// (linalg.Gemm handles the degenerate cases itself), and the slices hold
// the matrices they stand for.
func Gemm(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	C.flows_dgemm(cbool(ta), cbool(tb), C.int(m), C.int(n), C.int(k), C.double(alpha),
		(*C.double)(&a[0]), C.int(lda), (*C.double)(&b[0]), C.int(ldb), C.double(beta), (*C.double)(&c[0]), C.int(n))
}

// cbool is b as a C int.
func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
