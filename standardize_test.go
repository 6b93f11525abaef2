package flows_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

func TestStandardizeConformance(t *testing.T) {
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "Standardize/dim=1", Init: flows.Standardize([]float64{0.7}, []float64{2.5}), Dim: 1,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "Standardize/dim=3",
		Init: flows.Standardize([]float64{1, -2, 0.25}, []float64{0.5, 3, 1e-3}),
		Dim:  3,
	})
}

func TestStandardizeValues(t *testing.T) {
	mean, scale := []float64{1, -2}, []float64{2, 0.5}
	p, b, err := flows.Standardize(mean, scale)(flows.NewKey(0), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 0 {
		t.Fatalf("Standardize has %d parameters, want 0", len(p))
	}
	mean[0] = 100 // the layer keeps its own copy
	x := mat.NewDense(2, 2, []float64{3, -2, 1, -1})
	z, ld := b.Direct(p, x, nil)
	want := []float64{1, 0, 0, 2}
	for i, v := range z.RawMatrix().Data {
		if v != want[i] {
			t.Errorf("z[%d] = %v, want %v", i, v, want[i])
		}
	}
	// log-det = −(log 2 + log 0.5) = 0 exactly in the maths; rounding
	// of the two logs leaves at most an ulp or so.
	for i, v := range ld {
		if math.Abs(v) > 1e-15 {
			t.Errorf("logDet[%d] = %v, want 0", i, v)
		}
	}
}

func TestStandardizeInitErrors(t *testing.T) {
	for _, c := range []struct {
		name        string
		mean, scale []float64
		dim         int
		want        string
	}{
		{"short mean", []float64{0}, []float64{1, 1}, 2, "1 means and 2 scales"},
		{"short scale", []float64{0, 0}, []float64{1}, 2, "2 means and 1 scales"},
		{"zero scale", []float64{0, 0}, []float64{1, 0}, 2, "scale 1 is 0"},
		{"negative scale", []float64{0}, []float64{-1}, 1, "scale 0 is -1"},
		{"inf scale", []float64{0}, []float64{math.Inf(1)}, 1, "scale 0 is +Inf"},
		{"nan scale", []float64{0}, []float64{math.NaN()}, 1, "scale 0 is NaN"},
		{"nan mean", []float64{math.NaN()}, []float64{1}, 1, "mean 0 is NaN"},
	} {
		_, _, err := flows.Standardize(c.mean, c.scale)(flows.NewKey(0), c.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), "flows: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want a flows: error containing %q", c.name, err, c.want)
		}
	}
}

func TestStandardizeFrom(t *testing.T) {
	x := mat.NewDense(4, 3, []float64{
		1, 5, -1,
		2, 5, 1,
		3, 5, -1,
		4, 5, 1,
	})
	mean, scale, err := flows.StandardizeFrom(x)
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
	mean, scale, err = flows.StandardizeFrom(big)
	if err != nil {
		t.Fatal(err)
	}
	if mean[0] != 0 || math.Abs(scale[0]-1.5e308)/1.5e308 > 1e-15 {
		t.Errorf("huge column: mean %v scale %v, want 0 and 1.5e308", mean[0], scale[0])
	}

	// One row: every column is constant.
	_, scale, err = flows.StandardizeFrom(mat.NewDense(1, 2, []float64{3, -4}))
	if err != nil || scale[0] != 1 || scale[1] != 1 {
		t.Errorf("one row: scale %v, err %v; want [1 1]", scale, err)
	}
}

func TestStandardizeFromErrors(t *testing.T) {
	x := mat.NewDense(3, 2, []float64{0, 1, 2, 3, 4, math.Inf(-1)})
	_, _, err := flows.StandardizeFrom(x)
	if err == nil || !strings.Contains(err.Error(), "row 2, column 1 is -Inf") {
		t.Errorf("err = %v, want one naming row 2, column 1", err)
	}
	x.Set(0, 1, math.NaN())
	_, _, err = flows.StandardizeFrom(x)
	if err == nil || !strings.Contains(err.Error(), "row 0, column 1 is NaN") {
		t.Errorf("err = %v, want one naming row 0, column 1", err)
	}
	if _, _, err := flows.StandardizeFrom(nil); err == nil {
		t.Error("nil data: no error")
	}
	if _, _, err := flows.StandardizeFrom(&mat.Dense{}); err == nil {
		t.Error("empty data: no error")
	}
}
