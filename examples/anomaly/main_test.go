package main

import (
	"math"
	"strings"
	"testing"
)

func TestAUC(t *testing.T) {
	for _, c := range []struct {
		normal, anom []float64
		want         float64
	}{
		{[]float64{1, 2, 3}, []float64{4, 5}, 1},
		{[]float64{4, 5}, []float64{1, 2, 3}, 0},
		{[]float64{1, 1}, []float64{1, 1, 1}, 0.5},
		// Pairs (normal, anomalous): 1<2 ✓, 1<3 ✓, 3>2 ✗, 3=3 ½ → 2.5/4.
		{[]float64{1, 3}, []float64{2, 3}, 0.625},
		{[]float64{0, 2, 2}, []float64{2}, (1 + 0.5 + 0.5) / 3},
	} {
		if got := AUC(c.normal, c.anom); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("AUC(%v, %v) = %v, want %v", c.normal, c.anom, got, c.want)
		}
	}
}

func TestReadTableMissing(t *testing.T) {
	_, _, err := readTable("/nonexistent/breast_cancer.csv")
	if err == nil {
		t.Fatal("no error for a missing file")
	}
	if want := "python3-sklearn"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}
