package prep_test

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/prep"
)

func TestStandardizeFrom(t *testing.T) {
	x := mat.NewDense(4, 3, []float64{
		1, 5, -1,
		2, 5, 1,
		3, 5, -1,
		4, 5, 1,
	})
	mean, scale, err := prep.StandardizeFrom(x)
	if err != nil {
		t.Fatal(err)
	}
	// Column 0: mean 2.5, population variance 1.25. Column 1 is constant
	// (scale 1). Column 2: mean 0, variance 1. Tolerance: a few ulps of
	// two short sums.
	wantMean := []float64{2.5, 5, 0}
	wantScale := []float64{math.Sqrt(1.25), 1, 1}
	for j := range 3 {
		if math.Abs(mean[j]-wantMean[j]) > 1e-14 || math.Abs(scale[j]-wantScale[j]) > 1e-14 {
			t.Errorf("column %d: mean %v scale %v, want %v and %v", j, mean[j], scale[j], wantMean[j], wantScale[j])
		}
	}

	// Huge finite values must not overflow to an infinite mean or scale.
	big := mat.NewDense(2, 1, []float64{1.5e308, -1.5e308})
	mean, scale, err = prep.StandardizeFrom(big)
	if err != nil {
		t.Fatal(err)
	}
	if mean[0] != 0 || math.Abs(scale[0]-1.5e308)/1.5e308 > 1e-15 {
		t.Errorf("huge column: mean %v scale %v, want 0 and 1.5e308", mean[0], scale[0])
	}

	// One row: every column is constant.
	_, scale, err = prep.StandardizeFrom(mat.NewDense(1, 2, []float64{3, -4}))
	if err != nil || scale[0] != 1 || scale[1] != 1 {
		t.Errorf("one row: scale %v, err %v; want [1 1]", scale, err)
	}
}

func TestStandardizeFromErrors(t *testing.T) {
	x := mat.NewDense(3, 2, []float64{0, 1, 2, 3, 4, math.Inf(-1)})
	_, _, err := prep.StandardizeFrom(x)
	if err == nil || !strings.Contains(err.Error(), "row 2, column 1 is -Inf") {
		t.Errorf("err = %v, want one naming row 2, column 1", err)
	}
	x.Set(0, 1, math.NaN())
	_, _, err = prep.StandardizeFrom(x)
	if err == nil || !strings.Contains(err.Error(), "row 0, column 1 is NaN") {
		t.Errorf("err = %v, want one naming row 0, column 1", err)
	}
	if _, _, err := prep.StandardizeFrom(nil); err == nil {
		t.Error("nil data: no error")
	}
	if _, _, err := prep.StandardizeFrom(&mat.Dense{}); err == nil {
		t.Error("empty data: no error")
	}
}
