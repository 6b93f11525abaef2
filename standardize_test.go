package flows_test

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
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
