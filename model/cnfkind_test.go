package model

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// twoMoons draws n rows of a noisy two-moons table, in units far from the
// standard ones (the model standardises them).
func twoMoons(seed uint64, n int) *mat.Dense {
	rng := flows.NewKey(seed).Rand()
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		a := math.Pi * rng.Float64()
		u, v := math.Cos(a), math.Sin(a)
		if i%2 == 1 {
			u, v = 1-u, 0.5-v
		}
		x.SetRow(i, []float64{5 + 3*(u+0.1*rng.NormFloat64()), -2 + 3*(v+0.1*rng.NormFloat64())})
	}
	return x
}

func TestCNFKindDefaults(t *testing.T) {
	x := twoMoons(1, 50)
	m, err := New(Config{Kind: KindCNF}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	want := ODEConfig{RTol: 1e-4, ATol: 1e-4, MaxSteps: 200, Trace: flows.TraceAuto, Gradient: flows.Adjoint}
	if c.Layers != 1 || c.Activation != flows.Tanh || c.ODE != want {
		t.Errorf("defaults: %d layers, %v, %+v; want 1, Tanh, %+v", c.Layers, c.Activation, c.ODE, want)
	}
	// Given settings are kept.
	given := ODEConfig{RTol: 1e-6, ATol: 1e-7, MaxSteps: 50, Trace: flows.TraceHutchinson, Gradient: flows.BackpropSteps}
	m, err = New(Config{Kind: KindCNF, Layers: 2, Activation: flows.SiLU, ODE: given}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.Layers != 2 || c.Activation != flows.SiLU || c.ODE != given {
		t.Errorf("given settings became %d layers, %v, %+v", c.Layers, c.Activation, c.ODE)
	}
	// Other kinds drop the ODE settings, so their files do not change.
	m, err = New(Config{Kind: KindMAF, ODE: given}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.ODE != (ODEConfig{}) {
		t.Errorf("maf kept ODE settings %+v", m.Config.ODE)
	}
	if e := m.Evaluations(); e != (Evaluations{}) {
		t.Errorf("maf counted evaluations %+v", e)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: KindCNF, Activation: flows.ELU}, "activation ELU has no second derivative"},
		{Config{Kind: KindCNF, Activation: flows.LeakyReLU}, "activation LeakyReLU"},
		{Config{Kind: KindCNF, ODE: ODEConfig{RTol: -1}}, "rtol -1 and atol 0"},
		{Config{Kind: KindCNF, ODE: ODEConfig{ATol: math.Inf(1)}}, "atol +Inf"},
		{Config{Kind: KindCNF, ODE: ODEConfig{RTol: math.NaN()}}, "rtol NaN"},
		{Config{Kind: KindCNF, ODE: ODEConfig{MaxSteps: -3}}, "budget of -3 steps"},
		{Config{Kind: KindCNF, ODE: ODEConfig{Trace: 7}}, "unknown trace mode 7"},
		{Config{Kind: KindCNF, ODE: ODEConfig{Gradient: 2}}, "unknown gradient 2"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCNFKindFit fits a cnf model for two epochs, checks that the counts of
// function evaluations add up, and that a saved model gives the same
// densities.
func TestCNFKindFit(t *testing.T) {
	x := twoMoons(2, 120)
	m, err := New(Config{Kind: KindCNF, Hidden: []int{16, 16}, Seed: 4}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := mean(m.LogPDF(x, nil))
	if e := m.Evaluations(); e.Train != 0 || e.Backward != 0 || e.Other == 0 {
		// New's LogPDF above is the only solve so far.
		t.Errorf("after one LogPDF: %+v, want only Other", e)
	}
	other := m.Evaluations().Other
	var steps int
	var perEpoch []Evaluations
	res, err := m.Fit(x, nil, optim.FitConfig{Epochs: 2, BatchSize: 40, LR: 3e-3, Progress: func(p optim.Progress) {
		steps = p.Step
		perEpoch = append(perEpoch, m.Evaluations())
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := m.Evaluations()
	// DOPRI5 evaluates at least 7 times per solve (the first step's 6
	// stages and the starting derivative) and once more per step.
	if steps == 0 || e.Train < int64(7*steps) || e.Backward < int64(7*steps) {
		t.Errorf("%d steps: %+v, want at least 7 evaluations per step each way", steps, e)
	}
	if e.Other <= other || len(perEpoch) != 2 || perEpoch[1].Train <= perEpoch[0].Train {
		t.Errorf("validation evaluations %d (from %d), per epoch %+v", e.Other, other, perEpoch)
	}
	if after := mean(m.LogPDF(x, nil)); !(after > before) {
		t.Errorf("mean log density %v after the fit, %v before (result %+v)", after, before, res)
	}
	path := filepath.Join(t.TempDir(), "cnf.flow")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.ODE != m.Config.ODE || l.Config.Activation != flows.Tanh {
		t.Errorf("loaded %+v, saved %+v", l.Config, m.Config)
	}
	want, got := m.LogPDF(x, nil), l.LogPDF(x, nil)
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("row %d: loaded model's log density %v, saved %v", i, got[i], want[i])
		}
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
