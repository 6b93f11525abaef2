package model

// Pins: testdata/models/ holds a model file of every kind (the first five
// written in format version 1, before the model moved out of the root
// package) and one with bounded and dequantised columns, with the log
// densities and samples each must give, bit for bit. A change that moves
// any of these is a change of behaviour: of a layer's parameter layout, of
// its key use, or of its arithmetic. Regenerate missing ones with
//
//	go test ./model -run 'TestPinned' -update-pins
//
// which never rewrites a file already pinned.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
)

var updatePins = flag.Bool("update-pins", false, "add missing model files to testdata/models (a deliberate, documented change only)")

// pinBatch draws n×dim standard normal rows from key (the root package's
// pin batch, without the squashing).
func pinBatch(key flows.Key, n, dim int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := range n {
		for j := range dim {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	return x
}

func denseRows(m *mat.Dense) []float64 {
	if m == nil {
		return nil
	}
	r, c := m.Dims()
	out := make([]float64, 0, r*c)
	for i := range r {
		out = append(out, m.RawRowView(i)...)
	}
	return out
}

// skipOnOpenBLAS skips a test of exact bits in the openblas build (see
// the root package's pin_test.go).
func skipOnOpenBLAS(t testing.TB) {
	t.Helper()
	if linalg.Backend() == "openblas" {
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Model files.

// modelPin is what one pinned model file must give.
type modelPin struct {
	File       string   `json:"file"`
	Probe      []string `json:"probe"`      // rows, float64 bits in hex, row-major
	LogPDF     []string `json:"logpdf"`     // per probe row
	SampleSeed uint64   `json:"sampleSeed"` // Sample(NewKey(SampleSeed), n)
	Sample     []string `json:"sample"`     // row-major
}

const modelPinFile = "testdata/models/pins.json"

func bitsHex(vs []float64) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%016x", math.Float64bits(v))
	}
	return out
}

func hexBits(t *testing.T, ss []string) []float64 {
	t.Helper()
	out := make([]float64, len(ss))
	for i, s := range ss {
		var u uint64
		if _, err := fmt.Sscanf(s, "%x", &u); err != nil {
			t.Fatalf("bad pin %q: %v", s, err)
		}
		out[i] = math.Float64frombits(u)
	}
	return out
}

// pinnedModels makes the pinned model files: every kind, fitted a little to
// a fixed three-column table so that no parameter is at its initial value.
func pinnedModels(t *testing.T) map[string]*Model {
	t.Helper()
	rng := flows.NewKey(21).Rand()
	data := mat.NewDense(200, 3, nil)
	for i := range 200 {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		data.SetRow(i, []float64{10 + 2*a, a*a - 1 + 0.3*b, math.Sin(3*a) + 0.1*rng.NormFloat64()})
	}
	models := map[string]*Model{}
	for _, info := range Kinds() {
		k := info.Kind
		if k == KindImageGlow {
			continue // below, on images
		}
		m, err := New(Config{Kind: k, Layers: 2, Hidden: []int{8, 8}, Activation: flows.Tanh, Seed: 5}, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		rng := flows.NewKey(22).Rand()
		for i := range m.Params {
			m.Params[i] += 0.05 * rng.NormFloat64()
		}
		models[string(k)] = m
		// A revised kind: its first pinned file is of the revision it was
		// pinned at, never rewritten; each later revision gets its own.
		if spec, _ := k.spec(); spec.revision > 0 {
			models[fmt.Sprintf("%s-r%d", k, spec.revision)] = m
		}
	}
	// Bounded and dequantised columns: integers in [0, 100), positive
	// values, proportions.
	rng = flows.NewKey(25).Rand()
	data = mat.NewDense(200, 3, nil)
	for i := range 200 {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		data.SetRow(i, []float64{math.Floor(10 + 3*a*a), math.Exp(0.5 * b), 1 / (1 + math.Exp(-a-0.3*b))})
	}
	inf := math.Inf(1)
	m, err := New(Config{Kind: KindNSFCoupling, Layers: 2, Hidden: []int{8, 8}, Activation: flows.Tanh, Seed: 5,
		Dequantize: []int{0}, Bounds: []Bound{{Column: 0, Lo: 0, Hi: 100}, {Column: 1, Lo: 0, Hi: inf}, {Column: 2, Lo: 0, Hi: 1}}}, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng = flows.NewKey(22).Rand()
	for i := range m.Params {
		m.Params[i] += 0.05 * rng.NormFloat64()
	}
	models[domainPin] = m
	models[string(KindImageGlow)] = pinnedImageModel(t)
	return models
}

// pinImageShape is the shape of the pinned image model's images.
var pinImageShape = flows.Shape{C: 1, H: 4, W: 4}

// pinImages returns n images of pinImageShape, integer pixels 0 to 255
// (a bright row or column on a dark ground, with noise), from key.
func pinImages(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, pinImageShape.Size(), nil)
	for i := range n {
		k, vertical := rng.IntN(4), rng.IntN(2) == 0
		for y := range 4 {
			for z := range 4 {
				v := 20 + rng.IntN(30)
				if (vertical && z == k) || (!vertical && y == k) {
					v = 200 + rng.IntN(56)
				}
				x.Set(i, y*4+z, float64(v))
			}
		}
	}
	return x
}

// pinnedImageModel is the pinned image-glow model: two scales of one step,
// 4 hidden channels, its parameters moved off their initial values.
func pinnedImageModel(t *testing.T) *Model {
	t.Helper()
	m, err := New(Config{Kind: KindImageGlow, Shape: pinImageShape, Glow: flows.GlowConfig{Steps: 1, Hidden: 4}, Seed: 5},
		pinImages(flows.NewKey(26), 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(22).Rand()
	for i := range m.Params {
		m.Params[i] += 0.05 * rng.NormFloat64()
	}
	return m
}

// domainPin names the pinned model with bounded and dequantised columns.
const domainPin = "nsf-coupling-domain"

func TestPinnedModelFiles(t *testing.T) {
	skipOnOpenBLAS(t)
	if *updatePins {
		// The files already pinned are what earlier versions wrote (the
		// first five in format version 1, with that version's defaults;
		// naf, bnaf, sos and bernstein in version 2, cnf later): they are never
		// rewritten, only missing ones added.
		pins := map[string]modelPin{}
		if _, err := os.Stat(modelPinFile); err == nil {
			readJSON(t, modelPinFile, &pins)
		}
		probe := pinBatch(flows.NewKey(23), 6, 3)
		probe.Scale(3, probe)
		probe.Set(0, 0, 1e6)
		// The model with bounds gets rows inside them too.
		inside := mat.NewDense(6, 3, []float64{
			3, 0.5, 0.2, 12, 1, 0.5, 12.7, 1, 0.5, 99, 4, 0.99, 0, 0.01, 0.01, 100, 1, 0.5})
		var both mat.Dense
		both.Stack(inside, probe)
		for kind, m := range pinnedModels(t) {
			if _, ok := pins[kind]; ok {
				continue
			}
			file := kind + ".flow"
			probe := probe
			switch kind {
			case domainPin:
				probe = &both
			case string(KindImageGlow):
				probe = pinImages(flows.NewKey(27), 4)
				probe.Set(0, 0, 0)
				probe.Set(1, 0, 255)
			}
			if err := m.Save(filepath.Join("testdata/models", file)); err != nil {
				t.Fatal(err)
			}
			pins[kind] = modelPin{
				File:       file,
				Probe:      bitsHex(denseRows(probe)),
				LogPDF:     bitsHex(m.LogPDF(probe, nil)),
				SampleSeed: 24,
				Sample:     bitsHex(denseRows(m.Sample(flows.NewKey(24), 5, nil))),
			}
		}
		writeJSON(t, modelPinFile, pins)
		return
	}
	var pins map[string]modelPin
	readJSON(t, modelPinFile, &pins)
	revisions := 0
	for _, info := range Kinds() {
		spec, _ := info.Kind.spec()
		revisions += spec.revision
	}
	if len(pins) != len(Kinds())+1+revisions {
		t.Fatalf("%d pinned model files, want one of each of the %d kinds, of each of their %d later revisions and %s (a new kind or revision: run with -update-pins, which adds the missing ones)",
			len(pins), len(Kinds()), revisions, domainPin)
	}
	for kind, pin := range pins {
		t.Run(kind, func(t *testing.T) {
			m, err := Load(filepath.Join("testdata/models", pin.File))
			if err != nil {
				t.Fatal(err)
			}
			probe := hexBits(t, pin.Probe)
			x := mat.NewDense(len(probe)/m.Dim, m.Dim, probe)
			for i, v := range m.LogPDF(x, nil) {
				if want := hexBits(t, pin.LogPDF)[i]; math.Float64bits(v) != math.Float64bits(want) {
					t.Errorf("log density of probe row %d = %v, pinned %v", i, v, want)
				}
			}
			want := hexBits(t, pin.Sample)
			for i, v := range denseRows(m.Sample(flows.NewKey(pin.SampleSeed), len(want)/m.Dim, nil)) {
				if math.Float64bits(v) != math.Float64bits(want[i]) {
					t.Errorf("sample entry %d = %v, pinned %v", i, v, want[i])
				}
			}
		})
	}
}
