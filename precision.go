package flows

import (
	"fmt"

	"github.com/gonormflows/flows/internal/linalg"
)

// Precision is the arithmetic of a conditioner net's matrix products
// (MLPConfig.Precision, MADEConfig.Precision), the bulk of a flow's work.
// Everything else stays float64 in either: the parameters and their
// gradients as the optimiser holds them, the activations between layers
// (each product rounds its inputs to float32 as it packs them, see
// linalg.GemmF32), the elementwise maps, transformers, log-determinants
// and losses. The conformance suite checks Float64.
type Precision int

const (
	// Float64 computes the products in float64 (the default).
	Float64 Precision = iota
	// Float32 computes the products in float32 on packed float32 panels
	// (16 lanes with AVX-512, 8 with AVX2), summing at most 256 terms in
	// float32 before adding them into the float64 result: the products run
	// about twice as fast (a whole training step at hidden width 512 about
	// 1.3×, see BENCHMARKS.md), with products accurate to about
	// 256·2⁻²⁴ ≈ 1.5e-5 of the terms' magnitude. Results are bit-identical
	// on any GOMAXPROCS and any of the kernels, like Float64's.
	Float32
)

// String returns the precision's name, as in model files: "float64" or
// "float32".
func (pr Precision) String() string {
	switch pr {
	case Float64:
		return "float64"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("Precision(%d)", int(pr))
}

// MarshalText returns the precision's name.
func (pr Precision) MarshalText() ([]byte, error) {
	if !pr.valid() {
		return nil, fmt.Errorf("flows: unknown precision %d", int(pr))
	}
	return []byte(pr.String()), nil
}

// UnmarshalText sets pr to the precision named text ("float64" or
// "float32"; an empty text is Float64, so files written before the
// setting existed read as they were computed).
func (pr *Precision) UnmarshalText(text []byte) error {
	switch string(text) {
	case "float64", "":
		*pr = Float64
	case "float32":
		*pr = Float32
	default:
		return fmt.Errorf("flows: unknown precision %q; want float64 or float32", text)
	}
	return nil
}

// valid reports whether pr is one of the declared precisions.
func (pr Precision) valid() bool { return pr == Float64 || pr == Float32 }

// gemmFunc is the signature of linalg.Gemm and linalg.GemmF32.
type gemmFunc func(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64)

// gemm returns the product of the precision: linalg.GemmF32 for Float32,
// else linalg.Gemm; their Serial forms (the calling goroutine alone, the
// same bits) when serial.
func (pr Precision) gemm(serial bool) gemmFunc {
	switch {
	case pr == Float32 && serial:
		return linalg.GemmSerialF32
	case pr == Float32:
		return linalg.GemmF32
	case serial:
		return linalg.GemmSerial
	}
	return linalg.Gemm
}
