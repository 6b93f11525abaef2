package model

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// mixedRows returns n rows of two numbers whose mean depends on a species
// (three levels, in proportions 1:2:3), and the species.
func mixedRows(n int) (*mat.Dense, []string) {
	rng := rand.New(rand.NewPCG(7, 8))
	species := []string{"a", "b", "b", "c", "c", "c"}
	x := mat.NewDense(n, 2, nil)
	var cats []string
	for i := range n {
		s := species[rng.IntN(6)]
		shift := map[string]float64{"a": -4, "b": 0, "c": 4}[s]
		x.Set(i, 0, shift+rng.NormFloat64())
		x.Set(i, 1, 0.5*shift+rng.NormFloat64())
		cats = append(cats, s)
	}
	return x, cats
}

// TestMixed: a model of numbers and a category fits, scores each row as
// log p(k) + log p(x | k), samples the levels in their proportions with
// numbers that follow them, and saves to a version 3 file that loads with
// the same bits.
func TestMixed(t *testing.T) {
	x, cats := mixedRows(600)
	cfg := Config{Kind: KindRealNVP, Layers: 2, Hidden: []int{16, 16}, Seed: 3, Columns: []string{"u", "v"}}
	m, err := NewMixed(cfg, x, []string{"species"}, cats, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Categories.Width() != 3 || m.ContextDim != 0 {
		t.Fatalf("width %d, context %d", m.Categories.Width(), m.ContextDim)
	}
	if _, err := m.FitMixed(x, cats, nil, optim.FitConfig{Epochs: 15}); err != nil {
		t.Fatal(err)
	}
	lp, err := m.LogPDFMixed(x, cats, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, logk, _ := m.Context(cats, nil)
	flow := m.LogPDF(x, full)
	for i := range lp {
		if lp[i] != flow[i]+logk[i] {
			t.Fatalf("row %d: %v is not %v + %v", i, lp[i], flow[i], logk[i])
		}
	}
	// The right species explains a row better than a wrong one.
	wrong := slices.Clone(cats)
	better := 0
	for i, s := range cats {
		wrong[i] = map[string]string{"a": "c", "b": "a", "c": "a"}[s]
	}
	lw, _ := m.LogPDFMixed(x, wrong, nil)
	for i := range lp {
		if lp[i] > lw[i] {
			better++
		}
	}
	if better < 570 {
		t.Errorf("the true species scores higher in %d of 600 rows", better)
	}

	xs, ks := m.SampleMixed(flows.NewKey(4), 3000, nil)
	count := map[string]int{}
	meanC := 0.0
	for i, k := range ks {
		count[k]++
		if k == "c" {
			meanC += xs.At(i, 0)
		}
	}
	if math.Abs(float64(count["c"])/3000-0.5) > 0.05 || math.Abs(float64(count["a"])/3000-1.0/6) > 0.04 {
		t.Errorf("sampled levels %v, want about 500:1000:1500", count)
	}
	if meanC /= float64(count["c"]); math.Abs(meanC-4) > 0.5 {
		t.Errorf("the samples of species c have mean %.2f in u, want about 4", meanC)
	}

	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if v := buf.Bytes()[8]; v != 3 {
		t.Errorf("a mixed model's file is version %d, want 3", v)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := back.LogPDFMixed(x, cats, nil)
	if !slices.Equal(lb, lp) {
		t.Errorf("the loaded model scores other bits")
	}
	_, err = back.LogPDFMixed(x.Slice(0, 1, 0, 2).(*mat.Dense), []string{"d"}, nil)
	var ue *UnknownLevelError
	if !errors.As(err, &ue) || ue.Level != "d" {
		t.Errorf("unseen level: %v", err)
	}
	if _, err := NewMixed(cfg, x, []string{"species"}, cats, mat.NewDense(600, 1, nil)); err == nil {
		t.Errorf("a context with categories: no error")
	}
}
