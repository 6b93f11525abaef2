package flows_test

// The kinds added with the flow families of issue 17: each starts as the
// Gaussian fitted to the data, trains, and survives a save and a load bit
// for bit (model_test.go and persist_test.go cover the kinds before them).

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

// newKinds lists the kinds of the new families; identityKinds those whose
// layers start as the identity (BNAF's do not).
var (
	newKinds      = []flows.Kind{flows.KindNAF, flows.KindBNAF, flows.KindSOS, flows.KindBernstein}
	identityKinds = []flows.Kind{flows.KindNAF, flows.KindSOS, flows.KindBernstein}
)

func TestNewKindsInitialDensity(t *testing.T) {
	x := modelData(2, 200, 3)
	for _, kind := range identityKinds {
		m, err := flows.NewModel(smallConfig(kind), x, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := m.LogPDF(x, nil)
		for i := range 200 {
			want := 0.0
			for j := range 3 {
				u := (x.At(i, j) - m.Mean[j]) / m.Scale[j]
				want += -0.5*u*u - 0.5*math.Log(2*math.Pi) - math.Log(m.Scale[j])
			}
			// The transformers start as the identity up to a few ulps of
			// max(1, |x|) per layer, on a sum of three terms of size ~10.
			if math.Abs(got[i]-want) > 1e-12 {
				t.Fatalf("%s: log p(x_%d) = %v, want %v", kind, i, got[i], want)
			}
		}
	}
}

func TestNewKindsTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("training")
	}
	// The banana of TestModelTrains: the initial Gaussian has NLL ≈ 3.4
	// nats, the true density's entropy is ≈ 1.63.
	rng := flows.NewKey(10).Rand()
	x := mat.NewDense(256, 2, nil)
	for i := range 256 {
		a := rng.NormFloat64()
		x.Set(i, 0, a)
		x.Set(i, 1, a*a+0.3*rng.NormFloat64())
	}
	for _, kind := range newKinds {
		m, err := flows.NewModel(flows.Config{Kind: kind, Layers: 4, Hidden: []int{16, 16}, Activation: flows.Tanh, Seed: 1}, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		grad := make(flows.Params, len(m.Params))
		adam := optim.NewAdam(len(m.Params))
		adam.LR = 3e-3
		first, err := optim.NLL(m.Dist, m.Params, x, nil, grad)
		if err != nil {
			t.Fatal(err)
		}
		last := first
		start := time.Now()
		for range 300 {
			if last, err = optim.NLL(m.Dist, m.Params, x, nil, grad); err != nil {
				t.Fatal(err)
			}
			adam.Step(m.Params, grad)
		}
		t.Logf("%s: NLL %.3f → %.3f in %v", kind, first, last, time.Since(start))
		if first-last < 1 {
			t.Errorf("%s: NLL %.3f → %.3f after 300 steps, want a drop of at least 1", kind, first, last)
		}
	}
}

func TestNewKindsSaveLoad(t *testing.T) {
	dir := t.TempDir()
	x := modelData(3, 100, 3)
	for _, kind := range newKinds {
		m, err := flows.NewModel(smallConfig(kind), x, nil)
		if err != nil {
			t.Fatal(err)
		}
		rng := flows.NewKey(4).Rand()
		for i := range m.Params {
			m.Params[i] += 0.05 * rng.NormFloat64()
		}
		path := filepath.Join(dir, string(kind)+".flow")
		if err := m.Save(path); err != nil {
			t.Fatal(err)
		}
		got, err := flows.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		a, b := m.LogPDF(x, nil), got.LogPDF(x, nil)
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				t.Fatalf("%s: row %d: log density %v before saving, %v after loading", kind, i, a[i], b[i])
			}
		}
		s1, s2 := m.Sample(flows.NewKey(5), 4, nil), got.Sample(flows.NewKey(5), 4, nil)
		if !mat.Equal(s1, s2) {
			t.Fatalf("%s: samples differ after loading", kind)
		}
	}
}
