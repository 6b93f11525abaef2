package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/model"
)

// TestFitCNF fits a small cnf model for two epochs and checks the counts
// of function evaluations that fit reports, and the model file.
func TestFitCNF(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "mix.csv"), 200)
	r := mustRun(t, dir, "fit", "--kind", "cnf", "--hidden", "16,16", "--epochs", "2", "-o", "cnf.flow", "mix.csv")
	epoch := regexp.MustCompile(`(?m)^epoch [12]/2: .*, NFE ([0-9.]+) per step \(([0-9.]+) forward, ([0-9.]+) backward\)$`)
	lines := epoch.FindAllStringSubmatch(r.stderr, -1)
	if len(lines) != 2 {
		t.Fatalf("want two epoch lines with NFE counts:\n%s", r.stderr)
	}
	for _, l := range lines {
		total, _ := strconv.ParseFloat(l[1], 64)
		fwd, _ := strconv.ParseFloat(l[2], 64)
		back, _ := strconv.ParseFloat(l[3], 64)
		// One block: a DOPRI5 solve evaluates the net at least 7 times.
		if fwd < 7 || back < 7 || total != fwd+back {
			t.Errorf("epoch line %q: want at least 7 each way, adding up", l[0])
		}
	}
	if !regexp.MustCompile(`the ODE solves took [0-9.]+ function evaluations per training step on average \([0-9.]+ forward, [0-9.]+ backward\), and [1-9][0-9]* outside the steps`).MatchString(r.stderr) {
		t.Errorf("no summary of the evaluations:\n%s", r.stderr)
	}
	m, err := model.Load(filepath.Join(dir, "cnf.flow"))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.Kind != model.KindCNF || c.Layers != 1 || c.Activation != flows.Tanh || c.ODE.MaxSteps != 200 {
		t.Errorf("model file's config %+v, want cnf's defaults", c)
	}

	r = mustRun(t, dir, "fit", "--kind", "cnf", "--trace", "Hutchinson", "--activation", "silu", "--layers", "2", "--hidden", "4", "--epochs", "1", "-o", "h.flow", "mix.csv")
	if m, err = model.Load(filepath.Join(dir, "h.flow")); err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.ODE.Trace != flows.TraceHutchinson || c.Activation != flows.SiLU || c.Layers != 2 {
		t.Errorf("--trace hutchinson --activation silu --layers 2: config %+v", c)
	}
	for _, args := range [][]string{{"--kind", "maf", "--trace", "exact"}, {"--trace", "exact"}, {"--kind", "cnf", "--trace", "fast"}} {
		r = flowsRun(t, dir, append(append([]string{"fit"}, args...), "-o", "bad.flow", "mix.csv")...)
		if r.code == 0 || !strings.Contains(r.stderr, "--trace") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	r = flowsRun(t, dir, "fit", "--kind", "cnf", "--activation", "relu", "-o", "bad.flow", "mix.csv")
	if r.code == 0 || !strings.Contains(r.stderr, "--activation relu: cnf's dynamics nets need a smooth one: tanh or silu") {
		t.Errorf("--activation relu: exit %d\n%s", r.code, r.stderr)
	}
}

// TestFitCNFRNODE fits a cnf model with RNODE's regulariser and checks
// that its solves are counted on every epoch line, that the model file
// does not record it, and the flags' misuse.
func TestFitCNFRNODE(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "mix.csv"), 200)
	r := mustRun(t, dir, "fit", "--kind", "cnf", "--hidden", "8", "--epochs", "2", "--kinetic", "0.1", "--jacobian", "0.1", "--penalty-steps", "2", "-o", "reg.flow", "mix.csv")
	// Per step, 2 RK4 steps of 4 evaluations, forward and backward.
	epoch := regexp.MustCompile(`(?m)^epoch [12]/2: .*, NFE [0-9.]+ per step \([0-9.]+ forward, [0-9.]+ backward\) \+ 16\.0 of the regulariser$`)
	if n := len(epoch.FindAllString(r.stderr, -1)); n != 2 {
		t.Errorf("want two epoch lines with the regulariser's 16 evaluations per step:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "backward) + 16.0 of RNODE's regulariser, and ") {
		t.Errorf("no summary of the regulariser's evaluations:\n%s", r.stderr)
	}
	plain := mustRun(t, dir, "fit", "--kind", "cnf", "--hidden", "8", "--epochs", "2", "-o", "plain.flow", "mix.csv")
	if strings.Contains(plain.stderr, "regulariser") {
		t.Errorf("a fit without the regulariser reports one:\n%s", plain.stderr)
	}
	reg, err := model.Load(filepath.Join(dir, "reg.flow"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(filepath.Join(dir, "plain.flow"))
	if err != nil {
		t.Fatal(err)
	}
	if reg.Config.ODE != m.Config.ODE || reg.Config.Layers != 1 {
		t.Errorf("configs %+v and %+v", reg.Config, m.Config)
	}
	same := true
	for i := range m.Params {
		same = same && reg.Params[i] == m.Params[i]
	}
	if same {
		t.Error("the regulariser did not change the fitted parameters")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "maf", "--kinetic", "0.1"}, "--kinetic applies to the cnf kind only"},
		{[]string{"--jacobian", "0.1"}, "--jacobian applies to the cnf kind only"},
		{[]string{"--kind", "cnf", "--kinetic", "-1"}, "--kinetic -1: want a weight"},
		{[]string{"--kind", "cnf", "--jacobian", "NaN"}, "--jacobian NaN: want a weight"},
		{[]string{"--kind", "cnf", "--penalty-steps", "4"}, "--penalty-steps needs --kinetic or --jacobian"},
		{[]string{"--kind", "cnf", "--layers", "2", "--kinetic", "0.1"}, "one block, not --layers 2"},
	} {
		r = flowsRun(t, dir, append(append([]string{"fit"}, tc.args...), "-o", "bad.flow", "mix.csv")...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want an error containing %q\n%s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}
