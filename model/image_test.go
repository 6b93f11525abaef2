package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// meanLogPDF is the mean log density of the rows of x under m.
func meanLogPDF(m *Model, x *mat.Dense) float64 {
	s := 0.0
	for _, v := range m.LogPDF(x, nil) {
		s += v
	}
	return s / float64(len(m.LogPDF(x, nil)))
}

func TestImageGlowDefaultsAndRoundTrip(t *testing.T) {
	x := pinImages(flows.NewKey(1), 64)
	m, err := New(Config{Kind: KindImageGlow, Shape: pinImageShape}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Layers != 1 || c.Hidden != nil || c.Glow.Steps != 4 || c.Glow.Hidden != 32 || c.Glow.Scales != 2 {
		t.Errorf("defaults: layers %d hidden %v glow %+v, want 1, nil, {Scales:2 Steps:4 Hidden:32}", c.Layers, c.Hidden, c.Glow)
	}
	if len(c.Dequantize) != 16 || c.Dequantize[15] != 15 {
		t.Errorf("Dequantize = %v, want every column", c.Dequantize)
	}
	// The fixed preprocessing maps 0 to λ and 256 to 1 − λ.
	if got := (0 - m.Mean[3]) / m.Scale[3]; math.Abs(got-pixelLambda) > 1e-15 {
		t.Errorf("pixel 0 standardises to %v, want %v", got, pixelLambda)
	}
	path := filepath.Join(t.TempDir(), "img.flow")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Config.equal(m.Config) || !slices.Equal(l.LogPDF(x, nil), m.LogPDF(x, nil)) {
		t.Errorf("loaded model differs: config %+v, want %+v", l.Config, m.Config)
	}
	s := m.Sample(flows.NewKey(3), 50, nil)
	for i, v := range s.RawMatrix().Data {
		if v != math.Floor(v) || v < 0 || v > 255 {
			t.Fatalf("sample value %d is %v, want an integer 0 to 255", i, v)
		}
	}
}

func TestImageGlowFitImproves(t *testing.T) {
	x := pinImages(flows.NewKey(1), 256)
	m, err := New(Config{Kind: KindImageGlow, Shape: pinImageShape, Glow: flows.GlowConfig{Steps: 2, Hidden: 8}, Seed: 2}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := meanLogPDF(m, x)
	if _, err := m.Fit(x, nil, optim.FitConfig{Epochs: 5, BatchSize: 32, LR: 3e-3}); err != nil {
		t.Fatal(err)
	}
	// Bars have far less than the 8 bits of a uniform pixel.
	after := meanLogPDF(m, x)
	if !(after > before+0.5*16) {
		t.Errorf("mean log density %v before fitting, %v after 5 epochs: want a gain of at least half a nat per pixel", before, after)
	}
}

func TestImageGlowErrors(t *testing.T) {
	x := pinImages(flows.NewKey(1), 8)
	bad := mat.DenseCopyOf(x)
	bad.Set(5, 7, 256)
	frac := mat.DenseCopyOf(x)
	frac.Set(2, 3, 10.5)
	cases := []struct {
		name string
		cfg  Config
		x    *mat.Dense
		want string
	}{
		{"no shape", Config{Kind: KindImageGlow}, x, "needs a Shape"},
		{"columns", Config{Kind: KindImageGlow, Shape: flows.Shape{C: 1, H: 2, W: 2}}, x, "16 columns, but images of shape 1×2×2 have C·H·W = 4"},
		{"shape on vectors", Config{Kind: KindRealNVP, Shape: pinImageShape}, x, "takes no Shape"},
		{"layers", Config{Kind: KindImageGlow, Shape: pinImageShape, Layers: 3}, x, "not Layers"},
		{"bounds", Config{Kind: KindImageGlow, Shape: pinImageShape, Bounds: []Bound{{Column: 0, Lo: 0, Hi: 256}}}, x, "takes no Bounds"},
		{"scales", Config{Kind: KindImageGlow, Shape: pinImageShape, Glow: flows.GlowConfig{Scales: 3}}, x, "3 scales"},
		{"pixel", Config{Kind: KindImageGlow, Shape: pinImageShape}, bad, "row 5, column 7"},
		{"integer", Config{Kind: KindImageGlow, Shape: pinImageShape}, frac, "not an integer"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg, tc.x, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestSampleTemperature(t *testing.T) {
	m := pinnedImageModel(t)
	want := m.Sample(flows.NewKey(9), 7, nil)
	got, err := m.SampleTemperature(flows.NewKey(9), 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(got, want) {
		t.Errorf("temperature 1 differs from Sample")
	}
	// At temperature 0 every row is the image of the latent origin.
	cold, err := m.SampleTemperature(flows.NewKey(9), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cold.RawRowView(0), cold.RawRowView(2)) || mat.Equal(cold.Slice(0, 1, 0, 16), want.Slice(0, 1, 0, 16)) {
		t.Errorf("temperature 0: rows %v and %v should be equal and differ from %v", cold.RawRowView(0), cold.RawRowView(2), want.RawRowView(0))
	}
	if _, err := m.SampleTemperature(flows.NewKey(9), 3, math.NaN()); err == nil {
		t.Error("NaN temperature accepted")
	}
}

// TestImageGlowExtremePixels: the log density of rows far outside the
// pixels' range (which CheckData refuses) is still never NaN or +Inf, at
// the initial parameters and moved well away from them.
func TestImageGlowExtremePixels(t *testing.T) {
	m, err := New(Config{Kind: KindImageGlow, Shape: pinImageShape, Glow: flows.GlowConfig{Steps: 1, Hidden: 4}}, pinImages(flows.NewKey(1), 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(4, 16, nil)
	for j := range 16 {
		x.Set(0, j, -1e300)
		x.Set(1, j, 1e300)
		x.Set(2, j, float64(j%2)*255)
		x.Set(3, j, 127.5)
	}
	rng := flows.NewKey(5).Rand()
	for trial := range 3 {
		for i := range m.Params {
			if trial > 0 {
				m.Params[i] += 0.5 * rng.NormFloat64()
			}
		}
		for i, v := range m.LogPDF(x, nil) {
			if math.IsNaN(v) || math.IsInf(v, 1) {
				t.Errorf("trial %d: log density of row %d is %v", trial, i, v)
			}
		}
	}
}

// TestImageGlowFloat32: Glow.Precision reaches the convolutions, a model
// file keeps it, and the log densities stay within float32's rounding of
// the float64 model's.
func TestImageGlowFloat32(t *testing.T) {
	x := pinImages(flows.NewKey(1), 64)
	cfg := Config{Kind: KindImageGlow, Shape: pinImageShape, Glow: flows.GlowConfig{Steps: 2, Hidden: 16}, Seed: 3}
	m64, err := New(cfg, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Glow.Precision = flows.Float32
	m32, err := New(cfg, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m32.Params, m64.Params) {
		t.Fatal("float32 drew other parameters")
	}
	// Off the zero-initialised last convolutions, so the nets matter.
	rng := flows.NewKey(4).Rand()
	for i := range m32.Params {
		m32.Params[i] += 0.05 * rng.NormFloat64()
		m64.Params[i] = m32.Params[i]
	}
	path := filepath.Join(t.TempDir(), "f32.flow")
	if err := m32.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.Glow.Precision != flows.Float32 {
		t.Fatalf("loaded precision %v", l.Config.Glow.Precision)
	}
	lp64, lp32, lpl := m64.LogPDF(x, nil), m32.LogPDF(x, nil), l.LogPDF(x, nil)
	differ := false
	for i := range lp64 {
		if lpl[i] != lp32[i] {
			t.Fatalf("row %d: loaded %v, saved %v", i, lpl[i], lp32[i])
		}
		differ = differ || lp32[i] != lp64[i]
		if math.Abs(lp32[i]-lp64[i]) > 1e-4*math.Abs(lp64[i]) {
			t.Errorf("row %d: float32 %v, float64 %v", i, lp32[i], lp64[i])
		}
	}
	if !differ {
		t.Error("float32 gave float64's bits: the precision did not reach the convolutions")
	}
}

// TestLoadImageHeaderTooLarge: a header asking for a far larger Glow than
// the file holds is refused before the net is built.
func TestLoadImageHeaderTooLarge(t *testing.T) {
	b, err := os.ReadFile("testdata/models/image-glow.flow")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{`"steps":1`, `"steps":9`}, {`"hidden":4,`, `"hidden":9,`}} {
		_, err := Read(bytes.NewReader(editHeader(t, b, c[0], c[1])))
		if !errors.Is(err, ErrParamCount) {
			t.Errorf("%s → %s: err = %v, want ErrParamCount", c[0], c[1], err)
		}
	}
	// Hidden 9,999,999 needs 180M parameters at least: refused by the
	// bound, not by building the net (which would take gigabytes).
	long := strings.Replace(string(b), `"hidden":4,`, `"hidden":9999999,`, 1)
	j := binary.LittleEndian.Uint32(b[12:]) + uint32(len(long)-len(b))
	out := binary.LittleEndian.AppendUint32([]byte(long[:12]), j)
	out = fixCRC(append(out, long[16:]...))
	_, err = Read(bytes.NewReader(out))
	if !errors.Is(err, ErrParamCount) || !strings.Contains(err.Error(), "at least") {
		t.Errorf("hidden 9999999: err = %v, want ErrParamCount from the bound", err)
	}
}
