package flows_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

func TestFixedInvertibleLinearConformance(t *testing.T) {
	for _, dim := range []int{1, 2, 5} {
		flowstest.TestBijection(t, flowstest.Bijection{
			Name: fmt.Sprintf("FixedInvertibleLinear/dim=%d", dim),
			Init: flows.FixedInvertibleLinear(),
			Dim:  dim,
		})
	}
}

// fixedLinMatrix returns the W of a FixedInvertibleLinear as Direct's image
// of the identity (z = I·W = W).
func fixedLinMatrix(t *testing.T, key flows.Key, dim int) *mat.Dense {
	t.Helper()
	p, bj, err := flows.FixedInvertibleLinear()(key, dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 0 {
		t.Fatalf("len(p) = %d, want 0", len(p))
	}
	eye := mat.NewDense(dim, dim, nil)
	for i := 0; i < dim; i++ {
		eye.Set(i, i, 1)
	}
	w, ld := bj.Direct(p, eye, nil)
	for i, v := range ld {
		if v != 0 {
			t.Errorf("logDet[%d] = %v, want 0", i, v)
		}
	}
	return w
}

// TestFixedInvertibleLinearOrthogonal checks WᵀW = I and |det W| = 1, which
// is what makes a zero log-det and Wᵀ as the inverse right.
func TestFixedInvertibleLinearOrthogonal(t *testing.T) {
	for _, dim := range []int{1, 2, 5, 40} {
		w := fixedLinMatrix(t, flows.NewKey(uint64(dim)), dim)
		var wtw mat.Dense
		wtw.Mul(w.T(), w)
		// Householder QR gives Q orthogonal to a small multiple of
		// dim·2⁻⁵³ ≈ dim·1.1e-16; 1e-14·dim leaves a factor ~100 for that
		// constant, while a non-orthogonal matrix is off by O(1).
		tol := 1e-14 * float64(dim)
		for i := 0; i < dim; i++ {
			for j := 0; j < dim; j++ {
				want := 0.0
				if i == j {
					want = 1
				}
				if d := math.Abs(wtw.At(i, j) - want); d > tol {
					t.Errorf("dim %d: (WᵀW)[%d,%d] = %.17g, want %v", dim, i, j, wtw.At(i, j), want)
				}
			}
		}
		var lu mat.LU
		lu.Factorize(w)
		if logAbs, _ := lu.LogDet(); math.Abs(logAbs) > tol {
			t.Errorf("dim %d: log|det W| = %g, want 0 (within %g)", dim, logAbs, tol)
		}
	}
}

func TestFixedInvertibleLinearSameKey(t *testing.T) {
	a := fixedLinMatrix(t, flows.NewKey(9), 6)
	b := fixedLinMatrix(t, flows.NewKey(9), 6)
	if !mat.Equal(a, b) {
		t.Error("the same key gave different matrices")
	}
	c := fixedLinMatrix(t, flows.NewKey(10), 6)
	if mat.EqualApprox(a, c, 1e-3) {
		t.Error("different keys gave the same matrix")
	}
}

// TestFixedInvertibleLinearHaarSigns checks the sign correction of the QR
// draw: under the Haar measure W[0,0] is symmetric about zero, whereas the
// raw Householder Q factor has Q[0,0] = −|g₀₀|/‖g₀‖ < 0 always. Over 1000
// keys the count of positive entries is Binomial(1000, ½): mean 500, sd
// 15.8; [420, 580] is five standard deviations, and the keys are fixed, so
// the test is deterministic.
func TestFixedInvertibleLinearHaarSigns(t *testing.T) {
	for _, dim := range []int{1, 3} {
		pos := 0
		for k := range 1000 {
			if fixedLinMatrix(t, flows.NewKey(uint64(1000+k)), dim).At(0, 0) > 0 {
				pos++
			}
		}
		if pos < 420 || pos > 580 {
			t.Errorf("dim %d: W[0,0] > 0 for %d of 1000 keys, want about 500", dim, pos)
		}
	}
}

func TestFixedInvertibleLinearBadDim(t *testing.T) {
	for _, dim := range []int{0, -1} {
		if _, _, err := flows.FixedInvertibleLinear()(flows.NewKey(1), dim, 0); err == nil {
			t.Errorf("dim %d: no error", dim)
		}
	}
}
