package model_test

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

func TestBoundJSON(t *testing.T) {
	inf := math.Inf(1)
	for _, b := range []model.Bound{{Column: 2, Lo: 0, Hi: 1}, {Column: 0, Lo: -3, Hi: inf}, {Column: 1, Lo: -inf, Hi: 1e300}} {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var back model.Bound
		if err := json.Unmarshal(data, &back); err != nil || back != b {
			t.Errorf("%+v → %s → %+v (%v)", b, data, back, err)
		}
	}
	if s := (model.Bound{Lo: 0, Hi: inf}).String(); s != "0:" {
		t.Errorf("String() = %q, want 0:", s)
	}
}

// counts draws n Poisson(λ) integers (a row each) by inversion.
func counts(seed uint64, n int, lambda float64) *mat.Dense {
	rng := flows.NewKey(seed).Rand()
	x := mat.NewDense(n, 1, nil)
	for i := range n {
		k, p, u := 0, math.Exp(-lambda), rng.Float64()
		for c := p; u > c; c += p {
			k++
			p *= lambda / float64(k)
		}
		x.Set(i, 0, float64(k))
	}
	return x
}

// TestDequantizedModel fits a dequantised model to counts and checks that
// it is a distribution of the integers: its probabilities (exp LogPDF at
// each k) sum to one, they match its samples' frequencies, samples are
// non-negative integers, and a row's score depends only on its cell.
func TestDequantizedModel(t *testing.T) {
	x := counts(1, 2000, 4)
	cfg := model.Config{Kind: model.KindNSFAutoregressive, Layers: 2, Hidden: []int{16}, Seed: 3,
		Dequantize: []int{0}, Bounds: []model.Bound{{Column: 0, Lo: 0, Hi: math.Inf(1)}}}
	m, err := model.New(cfg, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fit(x, nil, optim.FitConfig{Epochs: 30}); err != nil {
		t.Fatal(err)
	}
	ks := mat.NewDense(80, 1, nil)
	for k := range 80 {
		ks.Set(k, 0, float64(k))
	}
	lp := m.LogPDF(ks, nil)
	sum := 0.0
	for _, v := range lp {
		sum += math.Exp(v)
	}
	// The one-point rule's error is of the order of the density's second
	// derivative over 24; for a spread of 2 it is well under 1%.
	t.Logf("the probabilities of 0..79 sum to %.5f", sum)
	if math.Abs(sum-1) > 0.02 {
		t.Errorf("the probabilities of 0..79 sum to %.4f, want 1", sum)
	}
	const n = 40000
	s := m.Sample(flows.NewKey(9), n, nil)
	freq := make([]float64, 80)
	for i := range n {
		v := s.At(i, 0)
		if v != math.Floor(v) || v < 0 {
			t.Fatalf("sample %d is %v, want a non-negative integer", i, v)
		}
		if v < 80 {
			freq[int(v)] += 1.0 / n
		}
	}
	for k := 1; k <= 8; k++ {
		// Poisson(4) has P(k) up to 0.2; the sampling error is below 0.005
		// and the one-point rule's below about 0.01.
		if p := math.Exp(lp[k]); math.Abs(p-freq[k]) > 0.015 {
			t.Errorf("P(%d) = %.4f, but %.4f of the samples", k, p, freq[k])
		}
	}
	shifted := mat.DenseCopyOf(ks)
	for k := range 80 {
		shifted.Set(k, 0, float64(k)+0.7)
	}
	for k, v := range m.LogPDF(shifted, nil) {
		if v != lp[k] {
			t.Fatalf("LogPDF(%d.7) = %v, LogPDF(%d) = %v: want the cell's score", k, v, k, lp[k])
		}
	}
	if v := m.LogPDF(mat.NewDense(1, 1, []float64{-1}), nil)[0]; !math.IsInf(v, -1) {
		t.Errorf("LogPDF(−1) = %v, want −Inf below the bound", v)
	}
	// Saved and loaded, the model scores the same.
	path := filepath.Join(t.TempDir(), "counts.flow")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range back.LogPDF(ks, nil) {
		if v != lp[k] {
			t.Fatalf("loaded model: LogPDF(%d) = %v, want %v", k, v, lp[k])
		}
	}
}

// TestBoundedModel fits proportions with bounds 0:1 and checks that the
// density is zero outside and that samples stay inside.
func TestBoundedModel(t *testing.T) {
	rng := flows.NewKey(4).Rand()
	x := mat.NewDense(600, 2, nil)
	for i := range 600 {
		a := rng.NormFloat64()
		x.SetRow(i, []float64{1 / (1 + math.Exp(-2*a)), 5 + a + 0.3*rng.NormFloat64()})
	}
	m, err := model.New(model.Config{Layers: 2, Hidden: []int{16}, Seed: 1,
		Bounds: []model.Bound{{Column: 0, Lo: 0, Hi: 1}}}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fit(x, nil, optim.FitConfig{Epochs: 10}); err != nil {
		t.Fatal(err)
	}
	out := mat.NewDense(4, 2, []float64{0, 5, 1, 5, -0.5, 5, 1e300, 5})
	for i, v := range m.LogPDF(out, nil) {
		if !math.IsInf(v, -1) {
			t.Errorf("LogPDF(%v) = %v, want −Inf", out.RawRowView(i), v)
		}
	}
	s := m.Sample(flows.NewKey(2), 5000, nil)
	for i := range 5000 {
		if v := s.At(i, 0); !(v > 0 && v < 1) {
			t.Fatalf("sample %d: %v is outside (0, 1)", i, v)
		}
	}
}

func TestDomainErrors(t *testing.T) {
	x := mat.NewDense(4, 2, []float64{0, 1, 2, 3.5, 4, 5, 6, 7})
	inf := math.Inf(1)
	tests := []struct {
		cfg  model.Config
		want string
		row  int // of the DataError, or −1 for none
	}{
		{model.Config{Dequantize: []int{2}}, "Dequantize: column 2 of 2 columns (0 to 1)", -1},
		{model.Config{Dequantize: []int{1, 1}}, "Dequantize: column 1 given twice", -1},
		{model.Config{Bounds: []model.Bound{{Column: 0, Lo: 1, Hi: 1}}}, "Bounds: column 0: 1 to 1, want lower < upper", -1},
		{model.Config{Bounds: []model.Bound{{Column: 0, Lo: -inf, Hi: inf}}}, "both sides open", -1},
		{model.Config{Bounds: []model.Bound{{Column: 5, Lo: 0, Hi: 1}}}, "Bounds: column 5 of 2 columns", -1},
		{model.Config{Dequantize: []int{1}, Columns: []string{"a", "b"}}, `row 1, column 1 ("b"): 3.5 is not an integer, but the column is dequantised`, 1},
		{model.Config{Bounds: []model.Bound{{Column: 0, Lo: 0, Hi: inf}}}, "row 0, column 0: 0 is not strictly inside the bounds 0:; widen them", 0},
		{model.Config{Dequantize: []int{0}, Bounds: []model.Bound{{Column: 0, Lo: 0, Hi: 6}}}, "row 3, column 0: 6 is a dequantised cell [k, k+1) not inside the bounds 0:6", 3},
	}
	for _, tc := range tests {
		_, err := model.New(tc.cfg, x, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
			continue
		}
		var de *model.DataError
		if errors.As(err, &de) != (tc.row >= 0) || tc.row >= 0 && de.Row != tc.row {
			t.Errorf("%+v: %v: DataError %+v, want row %d", tc.cfg, err, de, tc.row)
		}
	}
	// Model.Fit checks data it was not made from.
	m, err := model.New(model.Config{Layers: 1, Bounds: []model.Bound{{Column: 1, Lo: 0, Hi: 10}}}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := mat.DenseCopyOf(x)
	bad.Set(2, 1, 11)
	_, err = m.Fit(bad, nil, optim.FitConfig{Epochs: 1})
	var de *model.DataError
	if !errors.As(err, &de) || de.Row != 2 || de.Column != 1 {
		t.Errorf("Model.Fit with 11 outside 0:10: %v", err)
	}
}
