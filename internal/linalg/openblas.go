//go:build openblas && cgo

package linalg

import "github.com/gonormflows/flows/internal/openblas"

// In the openblas build, Gemm's products run on OpenBLAS (see package
// internal/openblas); the checks and the degenerate cases stay here.
func init() {
	backend = func(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
		if prepare(m, n, k, alpha, a, b, beta, c) {
			openblas.Gemm(ta, tb, m, n, k, alpha, a, b, beta, c)
		}
	}
}
