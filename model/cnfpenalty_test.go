package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// TestCNFPenaltyWiring checks that Model.CNFPenalty is flows.CNFPenalty of
// the model's block at its input, the standardised data and context: the
// same value and gradient, bit for bit.
func TestCNFPenaltyWiring(t *testing.T) {
	x := twoMoons(3, 30)
	c := mat.NewDense(30, 1, nil)
	for i := range 30 {
		c.Set(i, 0, 10+2*x.At(i, 0)) // a context in other units
	}
	m, err := New(Config{Kind: KindCNF, Hidden: []int{8}, Seed: 5}, x, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Params {
		m.Params[i] = 0.3 * math.Sin(float64(i)) // away from f ≡ 0
	}
	r := RNODE{Kinetic: 0.5, Jacobian: 0.25, Steps: 3}
	pen, err := m.CNFPenalty(r)
	if err != nil {
		t.Fatal(err)
	}
	grad := make(flows.Params, len(m.Params))
	got := pen(m.Params, x, c, grad)

	cfg := cnfBlockConfig(m.Config, nil)
	cfg.Kinetic, cfg.Jacobian, cfg.Solver = r.Kinetic, r.Jacobian, flows.ODESolver{Method: flows.RK4, Steps: r.Steps}
	direct, err := flows.CNFPenalty(flows.NewKey(5).Fold(rnodeTag), cfg, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, cs := mat.NewDense(30, 2, nil), mat.NewDense(30, 1, nil)
	for i := range 30 {
		for j := range 2 {
			u.Set(i, j, (x.At(i, j)-m.Mean[j])/m.Scale[j])
		}
		cs.Set(i, 0, (c.At(i, 0)-m.ContextMean[0])/m.ContextScale[0])
	}
	want := make(flows.Params, len(m.Params))
	wantV := direct(m.Params, u, cs, want)
	if !(got > 0) || math.Abs(got-wantV) > 1e-12*wantV {
		t.Errorf("penalty %v, flows.CNFPenalty at the standardised input %v", got, wantV)
	}
	for i := range want {
		if math.Abs(grad[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
			t.Fatalf("gradient %d: %v, want %v", i, grad[i], want[i])
		}
	}
	if e := m.Evaluations(); e.Penalty != 2*4*3 || e.Train != 0 || e.Backward != 0 {
		// 3 RK4 steps of 4 evaluations, forward and backward.
		t.Errorf("evaluations %+v, want 24 of the penalty and none of training", e)
	}
}

func TestCNFPenaltyFit(t *testing.T) {
	x := twoMoons(2, 120)
	fit := func(r RNODE) (*Model, []float64) {
		m, err := New(Config{Kind: KindCNF, Hidden: []int{16, 16}, Seed: 4}, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		fc := optim.FitConfig{Epochs: 3, BatchSize: 40, LR: 1e-2}
		var pens []float64
		fc.Progress = func(p optim.Progress) { pens = append(pens, p.TrainPenalty) }
		if r != (RNODE{}) {
			if fc.Penalty, err = m.CNFPenalty(r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Fit(x, nil, fc); err != nil {
			t.Fatal(err)
		}
		return m, pens
	}
	plain, plainPens := fit(RNODE{})
	reg, regPens := fit(RNODE{Kinetic: 1, Jacobian: 1, Steps: 2})
	if e := plain.Evaluations(); e.Penalty != 0 || plainPens[0] != 0 {
		t.Errorf("without a penalty: %+v, penalties %v", e, plainPens)
	}
	if e := reg.Evaluations(); e.Penalty == 0 || !(regPens[0] > 0) {
		t.Errorf("with a penalty: %+v, penalties %v", e, regPens)
	}
	// The regulariser reached the fit: the penalised model's trajectories
	// carry less kinetic energy and Jacobian norm than the plain one's.
	measure, err := plain.CNFPenalty(RNODE{Kinetic: 1, Jacobian: 1, Steps: 8})
	if err != nil {
		t.Fatal(err)
	}
	scratch := make(flows.Params, len(plain.Params))
	rp, pp := measure(reg.Params, x, nil, scratch), measure(plain.Params, x, nil, scratch)
	if !(rp < pp) {
		t.Errorf("penalty of the penalised fit %v, of the plain fit %v", rp, pp)
	}
	// A training setting: the model and its file do not record it.
	if !plain.Config.equal(reg.Config) {
		t.Errorf("configs differ: %+v and %+v", plain.Config, reg.Config)
	}
	path := filepath.Join(t.TempDir(), "reg.flow")
	if err := reg.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.ToLower(string(b)); strings.Contains(h, "kinetic") || strings.Contains(h, "jacobian") || strings.Contains(h, "rnode") {
		t.Errorf("the model file records the regulariser")
	}
}

func TestCNFPenaltyErrors(t *testing.T) {
	x := twoMoons(1, 40)
	for _, tc := range []struct {
		cfg  Config
		r    RNODE
		want string
	}{
		{Config{Kind: KindMAF}, RNODE{Kinetic: 1}, `kind "maf" has no ODE`},
		{Config{Kind: KindCNF, Layers: 2}, RNODE{Kinetic: 1}, "2 blocks"},
		{Config{Kind: KindCNF}, RNODE{Kinetic: -1}, "weights -1 and 0"},
		{Config{Kind: KindCNF}, RNODE{Jacobian: math.Inf(1)}, "weights 0 and +Inf"},
		{Config{Kind: KindCNF}, RNODE{Kinetic: 1, Steps: -2}, "-2 RK4 steps"},
		{Config{Kind: KindCNF}, RNODE{}, "both weights are zero"},
	} {
		m, err := New(tc.cfg, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.CNFPenalty(tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, %+v: error %v, want one containing %q", tc.cfg.Kind, tc.r, err, tc.want)
		}
	}
}
