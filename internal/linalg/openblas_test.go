//go:build openblas && cgo

package linalg

import "testing"

// TestOpenBLASBackend checks that the openblas build really routes Gemm to
// OpenBLAS (the shape and transpose tests in gemm_test.go then check its
// results against gonum's through Gemm).
func TestOpenBLASBackend(t *testing.T) {
	if got := Backend(); got != "openblas" {
		t.Fatalf("Backend() = %q in the openblas build", got)
	}
}
