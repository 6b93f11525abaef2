package flows_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// TestBijections runs the conformance suite over the parameter-free layers
// and the combinators; each layer's own file adds its cases the same way.
func TestBijections(t *testing.T) {
	for _, c := range []flowstest.Bijection{
		{Name: "Reverse/dim=1", Init: flows.Reverse(), Dim: 1},
		{Name: "Reverse/dim=4", Init: flows.Reverse(), Dim: 4},
		{Name: "Shuffle/dim=5", Init: flows.Shuffle(), Dim: 5},
		{Name: "Serial/empty", Init: flows.Serial(), Dim: 3},
		{Name: "Serial/permutations", Init: flows.Serial(flows.Shuffle(), flows.Reverse(), flows.Shuffle()), Dim: 4},
		{Name: "Invert/Shuffle", Init: flows.Invert(flows.Shuffle()), Dim: 4},
	} {
		flowstest.TestBijection(t, c)
	}
}

func TestDistributions(t *testing.T) {
	for _, c := range []flowstest.Distribution{
		{Name: "Normal/dim=1", Init: flows.Normal(), Dim: 1},
		{Name: "Normal/dim=2", Init: flows.Normal(), Dim: 2},
		{Name: "Normal/dim=5", Init: flows.Normal(), Dim: 5},
		{Name: "DiagNormal/dim=1", Init: flows.DiagNormal(), Dim: 1},
		{Name: "DiagNormal/dim=2", Init: flows.DiagNormal(), Dim: 2},
		{Name: "DiagNormal/dim=4", Init: flows.DiagNormal(), Dim: 4},
		{Name: "Flow/Shuffle/DiagNormal", Init: flows.Flow(flows.Shuffle(), flows.DiagNormal()), Dim: 2},
	} {
		flowstest.TestDistribution(t, c)
	}
}

// realNVP is the RealNVP of the benchmarks and tests: couplings whose
// conditioner is an MLP with two hidden layers, alternating halves by
// reversing the columns between couplings.
func realNVP(couplings, hidden int) flows.InitFunc {
	var layers []flows.InitFunc
	for i := range couplings {
		if i > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.AffineCoupling(flows.MLP([]int{hidden, hidden}, flows.ReLU)))
	}
	return flows.Serial(layers...)
}

// glow is a Glow-style stack: ActNorm, invertible linear mixing, affine
// coupling, repeated.
func glow(blocks, hidden int) flows.InitFunc {
	var layers []flows.InitFunc
	for range blocks {
		layers = append(layers, flows.ActNorm(), flows.InvertibleLinear(),
			flows.AffineCoupling(flows.MLP([]int{hidden}, flows.Tanh)))
	}
	return flows.Serial(layers...)
}

func TestStacks(t *testing.T) {
	for _, c := range []flowstest.Bijection{
		{Name: "RealNVP/dim=3", Init: realNVP(3, 6), Dim: 3},
		{Name: "RealNVP/dim=4", Init: realNVP(2, 5), Dim: 4},
		{Name: "Glow/dim=2", Init: glow(2, 5), Dim: 2},
		{Name: "Glow/dim=5", Init: glow(2, 4), Dim: 5},
		{Name: "Invert/Glow/dim=3", Init: flows.Invert(glow(2, 4)), Dim: 3},
	} {
		flowstest.TestBijection(t, c)
	}
	for _, c := range []flowstest.Distribution{
		{Name: "Flow/RealNVP/Normal/dim=2", Init: flows.Flow(realNVP(2, 6), flows.Normal()), Dim: 2},
		{Name: "Flow/Glow/DiagNormal/dim=1", Init: flows.Flow(flows.Serial(flows.ActNorm(), flows.InvertibleLinear()), flows.DiagNormal()), Dim: 1},
		{Name: "Flow/Glow/DiagNormal/dim=2", Init: flows.Flow(glow(2, 6), flows.DiagNormal()), Dim: 2},
		{Name: "Flow/Glow/Normal/dim=4", Init: flows.Flow(glow(2, 6), flows.Normal()), Dim: 4},
	} {
		flowstest.TestDistribution(t, c)
	}
}

// TestInitFromDataThroughFlow checks that ActNorm's data-dependent
// initialisation is reached through Flow and Serial, behind another layer
// (jax-flows' Flow could not reach it).
func TestInitFromDataThroughFlow(t *testing.T) {
	p, model, err := flows.Flow(flows.Serial(flows.Reverse(), flows.ActNorm()), flows.Normal())(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Columns with means (5, −3) and standard deviations (2, 0.5).
	x := mat.NewDense(4, 2, []float64{3, -3.5, 7, -2.5, 3, -2.5, 7, -3.5})
	flows.InitFromData(model, p, x, nil)
	// Reverse swaps the columns, so ActNorm sees (−3, 5) with sd (0.5, 2):
	// layout [logScale | bias].
	want := []float64{math.Log(0.5), math.Log(2), -3, 5}
	for i, w := range want {
		if math.Abs(p[i]-w) > 1e-12 {
			t.Errorf("param %d = %v, want %v", i, p[i], w)
		}
	}
}

// TestTrainablePriorTrains fits Flow(Reverse, DiagNormal) to shifted,
// scaled data: only the prior has parameters, so its mean and scale must
// move to the data's.
func TestTrainablePriorTrains(t *testing.T) {
	p, model, err := flows.Flow(flows.Reverse(), flows.DiagNormal())(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(2).Rand()
	x := mat.NewDense(2000, 2, nil)
	for i := 0; i < 2000; i++ {
		x.Set(i, 0, 3+0.5*rng.NormFloat64())
		x.Set(i, 1, -1+2*rng.NormFloat64())
	}
	grad := make(flows.Params, len(p))
	opt := optim.NewAdam(len(p))
	sched := optim.Cosine(0.05, 1e-4)
	const steps = 1500
	for range steps {
		if _, err := optim.NLL(model, p, x, nil, grad); err != nil {
			t.Fatal(err)
		}
		opt.StepLR(p, grad, sched(opt.Steps(), steps))
	}
	// The maximum-likelihood fit is the sample mean and (biased) standard
	// deviation of each column, reversed: prior layout [μ | log σ]. The
	// decayed step size leaves Adam within 1e-3 of it.
	var want [4]float64
	for j := 0; j < 2; j++ {
		col := mat.Col(nil, 1-j, x)
		mean, sd := stat.PopMeanStdDev(col, nil)
		want[j], want[2+j] = mean, math.Log(sd)
	}
	for i := range want {
		if math.Abs(p[i]-want[i]) > 1e-3 {
			t.Errorf("prior param %d = %.5f, want %.5f", i, p[i], want[i])
		}
	}
}

func TestSerialNamesFailingLayer(t *testing.T) {
	_, _, err := flows.Serial(flows.Reverse(), flows.AffineCoupling(flows.MLP([]int{4}, flows.ReLU)))(flows.NewKey(1), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "Serial layer 1") || !strings.Contains(err.Error(), "AffineCoupling") {
		t.Errorf("error %v does not name layer 1 and AffineCoupling", err)
	}
	_, _, err = flows.Flow(realNVP(2, 4), flows.Normal())(flows.NewKey(1), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "Serial layer 0") {
		t.Errorf("Flow error %v does not name the layer", err)
	}
}

func TestWrongWidthPanicNamesWidth(t *testing.T) {
	p, b, err := realNVP(2, 4)(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		msg := fmt.Sprint(recover())
		if !strings.HasPrefix(msg, "flows:") || !strings.Contains(msg, "want 3") {
			t.Errorf("panic %q does not start with flows: and name the width 3", msg)
		}
	}()
	b.Direct(p, mat.NewDense(2, 4, nil), nil)
}
