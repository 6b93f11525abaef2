package model_test

import (
	"math"
	"testing"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// extremeRows are finite inputs at and near the ends of float64: each
// model's log density there must be a number or −Inf, never NaN or +Inf.
func extremeRows(d int) *mat.Dense {
	vals := []float64{0, 1e-300, -1e-300, 1, -3, 1e8, -1e8, 1e154, -1e154, 1e200, 1e300, -1e300, 1e308, -1e308,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	rows := make([]float64, 0, len(vals)*len(vals)*d)
	n := 0
	for _, a := range vals {
		for _, b := range vals {
			for j := range d {
				if j%2 == 0 {
					rows = append(rows, a)
				} else {
					rows = append(rows, b)
				}
			}
			n++
		}
	}
	return mat.NewDense(n, d, rows)
}

// TestNoNaNLogDensity is the property of the quality issue: for every kind,
// at its initial parameters and at parameters moved well away from them,
// the log density of any finite row is never NaN or +Inf.
func TestNoNaNLogDensity(t *testing.T) {
	data := modelData(2, 200, 3)
	x := extremeRows(3)
	for _, info := range model.Kinds() {
		if info.Kind == model.KindImageGlow {
			continue // images: TestImageGlowExtremePixels
		}
		for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
			m, err := model.New(model.Config{Kind: info.Kind, Layers: 2, Hidden: []int{8, 8}, Activation: act}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			rng := flows.NewKey(5).Rand()
			for trial := range 3 {
				for i := range m.Params {
					if trial > 0 {
						m.Params[i] += 0.5 * rng.NormFloat64()
					}
				}
				for i, v := range m.LogPDF(x, nil) {
					if math.IsNaN(v) || math.IsInf(v, 1) {
						t.Errorf("%s/%v trial %d: log density of %v is %v", info.Kind, act, trial, x.RawRowView(i), v)
						break
					}
				}
			}
		}
	}
}
