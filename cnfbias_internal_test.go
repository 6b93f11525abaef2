package flows

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestCNFRandomBias checks RandomBias's doc: the layer still starts as the
// identity with it; and without it, at any weights with zero biases (b and
// bw: f odd in z), the gradient of the log density of a batch symmetric
// about the origin (rows x and −x) with respect to the biases is zero up to
// rounding, while with random biases it is not.
func TestCNFRandomBias(t *testing.T) {
	cfg := CNFConfig{Hidden: []int{8, 8}, Solver: ODESolver{Method: RK4, Steps: 8}, RandomBias: true}
	p, bj, err := CNF(cfg)(NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(4, 2, []float64{1.5, -0.3, 0.2, 2.1, -1.5, 0.3, -0.2, -2.1})
	z, ld := bj.Direct(p, x, nil)
	if !mat.Equal(z, x) || ld[0] != 0 {
		t.Errorf("RandomBias: not the identity at init: %v, %v", mat.Formatted(z), ld)
	}
	l, err := newCNF(cfg, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	biasGrad := func(zeroBias bool) float64 {
		q := append(Params(nil), p...)
		rng := NewKey(2).Rand()
		for i := range q {
			q[i] += 0.5 * rng.NormFloat64() // the last layer too: f ≠ 0
		}
		if zeroBias {
			for k := 0; k < l.net.layers(); k++ {
				_, b, _, _, bw := l.net.layer(q, k)
				clear(b)
				clear(bw)
			}
		}
		zz, _, back := bj.DirectVJP(q, x, nil)
		// The gradient of Σ log N(z) + log-det.
		dz := mat.NewDense(4, 2, nil)
		dz.Scale(-1, zz)
		dp := make(Params, len(q))
		back(dz, []float64{1, 1, 1, 1}, dp, nil)
		var m float64
		for k := 0; k < l.net.layers(); k++ {
			_, b, _, _, bw := l.net.layer(dp, k)
			for _, v := range append(append([]float64(nil), b...), bw...) {
				m = max(m, math.Abs(v))
			}
		}
		return m
	}
	if g := biasGrad(true); g > 1e-12 {
		t.Errorf("zero biases, symmetric batch: bias gradient %g, want 0", g)
	}
	if g := biasGrad(false); g < 1e-3 {
		t.Errorf("random biases: bias gradient %g, want O(1)", g)
	}
}
