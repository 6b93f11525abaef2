package flows

// Sizes a layer constructor refuses: a matrix of more float64s than
// maxLayerFloats is a typing slip or a hostile input, not a model, and
// allocating it would end the process instead of returning an error. The
// model package checks whole models against the machine's memory before
// building them (model.Limits); this bound is the layers' own last line.

import "fmt"

// maxLayerFloats bounds the float64s of any one matrix a layer constructor
// allocates: 2²⁸ (2 GiB). InvertibleLinear's dim×dim matrix stays under it
// up to dim 16,384.
const maxLayerFloats = 1 << 28

// checkLayerSize returns an init error naming the layer (who), the matrix
// (what) and its size when rows×cols exceeds maxLayerFloats.
func checkLayerSize(who, what string, rows, cols int) error {
	if rows > 0 && cols > maxLayerFloats/rows {
		return fmt.Errorf("flows: %s: %s of %d×%d = %.3g floats (%.3g GiB), more than the %d (2 GiB) one layer may allocate",
			who, what, rows, cols, float64(rows)*float64(cols), float64(rows)*float64(cols)*8/(1<<30), maxLayerFloats)
	}
	return nil
}

// checkWidths is checkLayerSize for the weight matrices of a net of the
// given widths (input, hidden…, output), one by one and together.
func checkWidths(who string, widths ...int) error {
	total := 0
	for l := 1; l < len(widths); l++ {
		if err := checkLayerSize(who, fmt.Sprintf("weight matrix %d", l-1), widths[l-1], widths[l]); err != nil {
			return err
		}
		if total += widths[l-1] * widths[l]; total > maxLayerFloats {
			return fmt.Errorf("flows: %s: widths %v: %d weights (%.3g GiB), more than the %d (2 GiB) one layer may allocate",
				who, widths, total, float64(total)*8/(1<<30), maxLayerFloats)
		}
	}
	return nil
}
