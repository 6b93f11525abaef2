package model_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distmv"
	"gonum.org/v1/gonum/stat/samplemv"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
)

// A Model is a gonum LogProber, and its Rander a RandLogProber, which is
// what gonum's samplers take as a proposal.
var (
	_ distmv.LogProber     = (*model.Model)(nil)
	_ distmv.RandLogProber = (*model.Rander)(nil)
)

// interopModel is a MAF model fitted (by New's standardisation) to
// broad data, N((0.5, −1), diag(2², 2²)), with its parameters moved away
// from the identity as training would, so that its density is a deformed
// Gaussian whose normalisation depends on every layer's log-det.
func interopModel(t *testing.T) *model.Model {
	t.Helper()
	rng := flows.NewKey(21).Rand()
	x := mat.NewDense(2000, 2, nil)
	for i := range 2000 {
		x.Set(i, 0, 0.5+2*rng.NormFloat64())
		x.Set(i, 1, -1+2*rng.NormFloat64())
	}
	m, err := model.New(model.Config{Kind: model.KindMAF, Layers: 3, Hidden: []int{16, 16}, Activation: flows.Tanh}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Params {
		m.Params[i] += 0.05 * rng.NormFloat64()
	}
	return m
}

func TestInteropLogProb(t *testing.T) {
	if linalg.Backend() == "openblas" {
		// OpenBLAS's order of summation depends on the batch's size.
		t.Skip("a row's bits equal to its batch's are our kernels' promise, not OpenBLAS's")
	}
	m := interopModel(t)
	x := m.Sample(flows.NewKey(1), 20, nil)
	want := m.LogPDF(x, nil)
	for i := range 20 {
		row := slices.Clone(x.RawRowView(i))
		if got := m.LogProb(row); got != want[i] {
			t.Errorf("LogProb(row %d) = %v, LogPDF gives %v", i, got, want[i])
		}
		if !slices.Equal(row, x.RawRowView(i)) {
			t.Error("LogProb modified its argument")
		}
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "flows: ") {
			t.Errorf("LogProb of a short point: panic %v, want a flows: message", r)
		}
	}()
	m.LogProb([]float64{1})
}

func TestInteropRander(t *testing.T) {
	m := interopModel(t)
	a, b := m.Rander(flows.NewKey(5)), m.Rander(flows.NewKey(5))
	for range 10 {
		x := a.Rand(nil)
		y := b.Rand(make([]float64, 2))
		if len(x) != 2 || !slices.Equal(x, y) {
			t.Fatalf("same key, different points: %v and %v", x, y)
		}
	}
	if x, y := a.Rand(nil), m.Rander(flows.NewKey(6)).Rand(nil); slices.Equal(x, y) {
		t.Error("different keys, same point")
	}
	if got, want := a.LogProb([]float64{0.3, -0.2}), m.LogProb([]float64{0.3, -0.2}); got != want {
		t.Errorf("Rander.LogProb = %v, Model.LogProb = %v", got, want)
	}
}

// TestInteropImportance uses the model as the proposal of gonum's
// importance sampler for a known target, N(μ, Σ), and checks the
// estimates against the exact values:
//
//   - the mean weight estimates ∫p = 1, which holds only if the model's
//     density is normalised (every log-det right, the standardisation's
//     included); the self-normalised estimates below would not see an
//     error by a constant factor;
//   - the self-normalised estimates of E[x₀], E[x₁] and E[x₀x₁] are μ₀,
//     μ₁ and Σ₀₁ + μ₀μ₁.
//
// Tolerance: each estimate is asymptotically normal; its standard error is
// estimated from the same weights (sd(w)/√N for the mean weight, and the
// delta-method √(Σ w²(f − est)²)/Σw for the ratios), and the test allows 5
// standard errors, which a correct sampler exceeds with probability below
// 1e-6 (and the seed is fixed). The proposal is broader than the target
// (scale 2 against at most 1.2), so the weights are bounded and the
// effective sample size, also checked, is a good fraction of N.
func TestInteropImportance(t *testing.T) {
	m := interopModel(t)
	mu := []float64{0.3, -0.4}
	sigma := mat.NewSymDense(2, []float64{1.44, 0.6, 0.6, 1})
	target, ok := distmv.NewNormal(mu, sigma, nil)
	if !ok {
		t.Fatal("bad covariance")
	}
	const n = 20000
	batch := mat.NewDense(n, 2, nil)
	w := make([]float64, n)
	samplemv.Importance{Target: target, Proposal: m.Rander(flows.NewKey(33))}.SampleWeighted(batch, w)

	var sw, sw2 float64
	for _, v := range w {
		sw += v
		sw2 += v * v
	}
	meanW := sw / n
	sdW := math.Sqrt(sw2/n - meanW*meanW)
	if ess := sw * sw / sw2; ess < n/4 {
		t.Fatalf("effective sample size %.0f of %d: the proposal is too far from the target for this test", ess, n)
	}
	if se := sdW / math.Sqrt(n); math.Abs(meanW-1) > 5*se {
		t.Errorf("mean importance weight %.4f, want 1 ± %.4f: the model's density is not normalised", meanW, 5*se)
	}

	for _, c := range []struct {
		name string
		f    func(x []float64) float64
		want float64
	}{
		{"E[x0]", func(x []float64) float64 { return x[0] }, mu[0]},
		{"E[x1]", func(x []float64) float64 { return x[1] }, mu[1]},
		{"E[x0·x1]", func(x []float64) float64 { return x[0] * x[1] }, sigma.At(0, 1) + mu[0]*mu[1]},
	} {
		est := 0.0
		for i := range n {
			est += w[i] * c.f(batch.RawRowView(i))
		}
		est /= sw
		v := 0.0
		for i := range n {
			d := w[i] * (c.f(batch.RawRowView(i)) - est)
			v += d * d
		}
		se := math.Sqrt(v) / sw
		if math.Abs(est-c.want) > 5*se {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", c.name, est, c.want, 5*se)
		}
	}
}

// TestInteropIID draws through gonum's samplemv.IID and checks that the
// points follow the model: their mean matches the mean of Model.Sample's
// (another stream), and their mean log density matches too (both estimate
// E_q[x] and E_q[log q]). Tolerance: 5 standard errors of the difference of
// two independent means of 5000 draws, from the samples' own spread.
func TestInteropIID(t *testing.T) {
	m := interopModel(t)
	const n = 5000
	a := mat.NewDense(n, 2, nil)
	samplemv.IID{Dist: m.Rander(flows.NewKey(44))}.Sample(a)
	b := m.Sample(flows.NewKey(45), n, nil)
	again := mat.NewDense(n, 2, nil)
	samplemv.IID{Dist: m.Rander(flows.NewKey(44))}.Sample(again)
	if !mat.Equal(a, again) {
		t.Error("samplemv.IID with the same key gave different points")
	}
	stats := func(v []float64) (mean, se float64) {
		for _, x := range v {
			mean += x
		}
		mean /= float64(len(v))
		for _, x := range v {
			se += (x - mean) * (x - mean)
		}
		return mean, math.Sqrt(se / float64(len(v)) / float64(len(v)))
	}
	check := func(what string, va, vb []float64) {
		ma, sa := stats(va)
		mb, sb := stats(vb)
		if tol := 5 * math.Hypot(sa, sb); math.Abs(ma-mb) > tol {
			t.Errorf("%s: IID %.4f, Model.Sample %.4f, want within %.4f", what, ma, mb, tol)
		}
	}
	check("mean of x0", mat.Col(nil, 0, a), mat.Col(nil, 0, b))
	check("mean of x1", mat.Col(nil, 1, a), mat.Col(nil, 1, b))
	check("mean log density", m.LogPDF(a, nil), m.LogPDF(b, nil))
}
