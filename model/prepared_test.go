package model_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/model"
)

// perturb adds normal noise of size s to m's parameters, so that no layer
// sits at its identity init and every product matters.
func perturb(m *model.Model, s float64, seed uint64) {
	rng := flows.NewKey(seed).Rand()
	for i := range m.Params {
		m.Params[i] += s * rng.NormFloat64()
	}
}

// samePrepared checks that m's prepared evaluator gives the bits of m's
// own LogPDF, Latent and Sample on x and its row blocks of 1 and 16 rows
// (one block, the one-row path) as well as the whole (several blocks).
func samePrepared(t *testing.T, name string, m *model.Model, x, c *mat.Dense) {
	t.Helper()
	ev := m.Prepare()
	n, _ := x.Dims()
	for _, r := range []int{1, 16, n} {
		xs := x.Slice(0, r, 0, m.Dim).(*mat.Dense)
		var cs *mat.Dense
		if c != nil {
			cs = c.Slice(0, r, 0, c.RawMatrix().Cols).(*mat.Dense)
		}
		if got, want := ev.LogPDF(xs, cs), m.LogPDF(xs, cs); !sameBits(got, want) {
			t.Errorf("%s, %d rows: prepared LogPDF differs", name, r)
		}
		if got, want := ev.Latent(xs, cs), m.Latent(xs, cs); !sameBits(got.RawMatrix().Data, want.RawMatrix().Data) {
			t.Errorf("%s, %d rows: prepared Latent differs", name, r)
		}
		key := flows.NewKey(uint64(r))
		if got, want := ev.Sample(key, r, cs), m.Sample(key, r, cs); !sameBits(got.RawMatrix().Data, want.RawMatrix().Data) {
			t.Errorf("%s, %d rows: prepared Sample differs", name, r)
		}
	}
}

// sameBits reports whether a and b hold the same float64 bits (NaNs too).
func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(u, v float64) bool { return math.Float64bits(u) == math.Float64bits(v) })
}

// TestPreparedMatches: Model.Prepare's evaluator returns the Model's own
// bits for every kind, in both precisions, for a conditional model (whose
// flow must then have a Prepare hook, the fast path) and for a model with
// dequantised and bounded columns.
func TestPreparedMatches(t *testing.T) {
	x := modelData(1, 300, 3)
	for _, prec := range []flows.Precision{flows.Float64, flows.Float32} {
		for _, k := range allKinds {
			cfg := smallConfig(k)
			cfg.Precision = prec
			m, err := model.New(cfg, x, nil)
			if err != nil {
				t.Fatal(err)
			}
			perturb(m, 0.05, 2)
			samePrepared(t, string(k)+"/"+prec.String(), m, x, nil)
		}
	}
	c := mat.NewDense(300, 2, nil)
	rng := flows.NewKey(3).Rand()
	for i := range 300 {
		c.SetRow(i, []float64{100 + 10*rng.NormFloat64(), rng.NormFloat64()})
	}
	m, err := model.New(smallConfig(model.KindMAF), x, c)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dist.Prepare == nil {
		t.Error("a conditional model's flow has no Prepare hook: it gets only the fallback")
	}
	perturb(m, 0.05, 4)
	samePrepared(t, "conditional maf", m, x, c)

	xi := mat.DenseCopyOf(x)
	for i := range 300 {
		xi.Set(i, 0, math.Floor(math.Abs(xi.At(i, 0))))
		xi.Set(i, 2, min(max(xi.At(i, 2), 0.5), 9.5))
	}
	cfg := smallConfig(model.KindRealNVP)
	cfg.Dequantize = []int{0}
	cfg.Bounds = []model.Bound{{Column: 2, Lo: 0, Hi: 10}}
	m, err = model.New(cfg, xi, nil)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 0.05, 5)
	samePrepared(t, "dequantised and bounded", m, xi, nil)
}

// TestPreparedMixed: the prepared evaluator of a mixed table's model gives
// LogPDFMixed's and SampleMixed's bits, and Context's error for a level
// the model has not seen.
func TestPreparedMixed(t *testing.T) {
	x := modelData(6, 200, 2)
	cats := make([]string, 200)
	for i := range cats {
		cats[i] = []string{"a", "b", "c"}[i%3]
	}
	m, err := model.NewMixed(smallConfig(model.KindMAF), x, []string{"k"}, cats, nil)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 0.05, 7)
	ev := m.Prepare()
	got, err := ev.LogPDFMixed(x, cats, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.LogPDFMixed(x, cats, nil)
	if !sameBits(got, want) {
		t.Error("prepared LogPDFMixed differs")
	}
	gx, gc := ev.SampleMixed(flows.NewKey(8), 150, nil)
	wx, wc := m.SampleMixed(flows.NewKey(8), 150, nil)
	if !sameBits(gx.RawMatrix().Data, wx.RawMatrix().Data) || !slices.Equal(gc, wc) {
		t.Error("prepared SampleMixed differs")
	}
	full, _, err := ev.Context(cats, nil)
	if err != nil {
		t.Fatal(err)
	}
	samePrepared(t, "mixed", m, x, full)
	bad := slices.Clone(cats)
	bad[5] = "zzz"
	if _, err := ev.LogPDFMixed(x, bad, nil); err == nil {
		t.Error("an unseen level scored without an error")
	}
}

// TestPreparedSnapshot: a prepared evaluator keeps the parameters it was
// made with; a change to Params afterwards shows in the Model only.
func TestPreparedSnapshot(t *testing.T) {
	x := modelData(9, 50, 3)
	m, err := model.New(smallConfig(model.KindMAF), x, nil)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 0.05, 10)
	before := m.LogPDF(x, nil)
	ev := m.Prepare()
	perturb(m, 0.05, 11)
	if !sameBits(ev.LogPDF(x, nil), before) {
		t.Error("the prepared evaluator sees a change to Params made after Prepare")
	}
	if sameBits(m.LogPDF(x, nil), before) {
		t.Error("the change to Params did not change the model (the test cannot fail)")
	}
}

// TestPreparedConcurrent: concurrent calls of one evaluator (run with
// -race) give the bits of a lone call.
func TestPreparedConcurrent(t *testing.T) {
	x := modelData(12, 400, 3)
	m, err := model.New(smallConfig(model.KindMAF), x, nil)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 0.05, 13)
	ev := m.Prepare()
	want, wantS := ev.LogPDF(x, nil), ev.Sample(flows.NewKey(1), 300, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g%2 == 0 && !sameBits(ev.LogPDF(x, nil), want) {
				t.Error("a concurrent LogPDF differs")
			}
			if g%2 == 1 && !mat.Equal(ev.Sample(flows.NewKey(1), 300, nil), wantS) {
				t.Error("a concurrent Sample differs")
			}
		}()
	}
	wg.Wait()
}

// TestPrecisionModel: a Float32 model writes a version 3 file recording
// its precision, which loads with the same bits and writes the same bytes
// again; its log densities differ from the Float64 model's with the same
// parameters by no more than the derived bound, and by more than nothing.
func TestPrecisionModel(t *testing.T) {
	x := modelData(14, 200, 8)
	cfg := model.Config{Kind: model.KindMAF, Layers: 5, Hidden: []int{64, 64}, Seed: 3}
	m64, err := model.New(cfg, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m64, 0.05, 15)
	cfg.Precision = flows.Float32
	m32, err := model.New(cfg, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(m32.Params, m64.Params)

	var img bytes.Buffer
	if _, err := m32.WriteTo(&img); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(img.Bytes()[8:]); v != 3 || !bytes.Contains(img.Bytes(), []byte(`"precision":"float32"`)) {
		t.Errorf("a float32 model file: version %d, header without its precision", v)
	}
	l, err := model.Read(bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.Precision != flows.Float32 || !sameBits(l.Params, m32.Params) || !sameBits(l.LogPDF(x, nil), m32.LogPDF(x, nil)) {
		t.Error("the loaded float32 model differs")
	}
	var again, img64 bytes.Buffer
	l.WriteTo(&again)
	if !bytes.Equal(again.Bytes(), img.Bytes()) {
		t.Error("a loaded float32 model writes other bytes")
	}
	m64.WriteTo(&img64)
	if v := binary.LittleEndian.Uint32(img64.Bytes()[8:]); v != 2 || bytes.Contains(img64.Bytes(), []byte("precision")) {
		t.Errorf("a float64 model file: version %d or a precision field", v)
	}

	// The bound, per row (precisionTol's argument in the flows package):
	// each float32 product is within (kc+2)·u32 of its terms' magnitude,
	// kc ≤ 64 terms; the errors of the products chained on a path add,
	// Layers·(len(Hidden)+1) of them, to first order with order-1
	// sensitivity, so every log-scale and every latent value is within
	// δ = products·(kc+2)·u32 (relative to values of order 1). A row's
	// log density sums Dim·Layers log-scales and −‖z‖²/2, whose error is
	// at most ‖z‖²·δ: |Δ log p| ≤ δ·(Dim·Layers + ‖z‖²).
	const u32 = 0x1p-24
	delta := float64(cfg.Layers*(len(cfg.Hidden)+1)) * (64 + 2) * u32
	lp64, lp32 := m64.LogPDF(x, nil), m32.LogPDF(x, nil)
	z := m64.Latent(x, nil)
	worst, differ := 0.0, false
	for i := range lp64 {
		zz := mat.Dot(z.RowView(i), z.RowView(i))
		tol := delta * (float64(8*cfg.Layers) + zz)
		d := math.Abs(lp32[i] - lp64[i])
		differ = differ || d != 0
		if !(d <= tol) {
			t.Errorf("row %d: log density %v in float32, %v in float64: |Δ| %.3g > %.3g", i, lp32[i], lp64[i], d, tol)
		}
		worst = max(worst, d/tol)
	}
	if !differ {
		t.Error("the float32 model gives the float64 bits: it does not compute in float32")
	}
	t.Logf("worst |Δ log p| is %.3g of its bound", worst)
}
