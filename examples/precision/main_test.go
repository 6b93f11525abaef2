package main

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestCrossFolds checks that the folds hold out every row exactly once, in
// order, and fit on exactly the other rows, in order.
func TestCrossFolds(t *testing.T) {
	const n, k = 23, 5
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		x.SetRow(i, []float64{float64(i), -float64(i)})
	}
	next := 0
	for j, sp := range crossFolds(x, k) {
		held := map[float64]bool{}
		r, _ := sp.test.Dims()
		for i := range r {
			if got := sp.test.At(i, 0); got != float64(next) || sp.test.At(i, 1) != -got {
				t.Fatalf("fold %d: held-out row %d is %v, want row %d", j, i, sp.test.RawRowView(i), next)
			}
			held[float64(next)] = true
			next++
		}
		m, _ := sp.train.Dims()
		if m+r != n {
			t.Fatalf("fold %d: %d training and %d held-out rows, want %d in all", j, m, r, n)
		}
		last := -1.0
		for i := range m {
			v := sp.train.At(i, 0)
			if held[v] || v <= last {
				t.Fatalf("fold %d: training row %d is row %v (held out or out of order)", j, i, v)
			}
			last = v
		}
	}
	if next != n {
		t.Fatalf("the folds hold out %d rows, want %d", next, n)
	}
}

// TestGaussianNLL checks the baseline against the closed form in one
// column: the held-out rows' mean NLL under N(mean, unbiased variance) of
// the training rows.
func TestGaussianNLL(t *testing.T) {
	train := mat.NewDense(4, 1, []float64{1, 2, 4, 5}) // mean 3, unbiased variance 10/3
	test := mat.NewDense(2, 1, []float64{3, 6})
	v := 10.0 / 3
	want := 0.5*math.Log(2*math.Pi*v) + (0+9)/(2*v)/2
	if got := gaussianNLL([]split{{train, test}}); math.Abs(got-want) > 1e-12 {
		t.Fatalf("gaussianNLL = %.15g, want %.15g", got, want)
	}
}
